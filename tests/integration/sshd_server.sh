#!/usr/bin/env bash
# The SFTP server of the backend tests (shared/EMULATORS.md): the real OpenSSH sshd as a
# user-level process on 127.0.0.1:PORT, with its own host key, an authorized key and a test user
# with a password. Used by ext/tests/conformance.rs and tests/integration/backend_servers.py.
#
#   sshd_server.sh DIR PORT PASSWORD
#
# Leaves in DIR: host_ed25519(.pub) (the server's key), id_ed25519(.pub) (the client's key),
# known_hosts (an OpenSSH known_hosts line for [127.0.0.1]:PORT), data/ (write replicas here).
# The user `ltxsftp` exists only inside a private mount namespace (`unshare -m`) whose
# /etc/passwd, /etc/shadow and /etc/group are bind-mounted copies: the machine's files are not
# touched. It has uid 0 so that it can reach any test directory (pytest's are 0700 and
# root-owned); sshd runs as root here, as in CI. Execs sshd: killing this process stops it.
set -euo pipefail
dir=$1 port=$2 pw=$3
user=ltxsftp
mkdir -p "$dir/data"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sshd-test-host -f "$dir/host_ed25519"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sshd-test-client -f "$dir/id_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
hash=$(openssl passwd -6 "$pw")
{ grep -v "^$user:" /etc/passwd; echo "$user:x:0:0:sftp test user:$dir/data:/bin/sh"; } > "$dir/passwd"
{ grep -v "^$user:" /etc/shadow; echo "$user:$hash:19000:0:99999:7:::"; } > "$dir/shadow"
cp /etc/group "$dir/group"
chmod 600 "$dir/shadow"
cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile none
UsePAM no
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UseDNS no
MaxStartups 64
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
mkdir -p /run/sshd   # sshd's privilege-separation directory (Debian's service creates it)
# shellcheck disable=SC2016
exec unshare -m sh -c 'mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/shadow" /etc/shadow &&
  mount --bind "$1/group" /etc/group && exec /usr/sbin/sshd -D -e -f "$1/sshd_config"' sh "$dir"

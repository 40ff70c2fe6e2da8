#!/usr/bin/env bash
# The soak of RELIABILITY.md: tests/integration/test_soak.py (live replica at ~5 transactions
# a second, one long-lived reader, with and without cache_dir) for SECONDS per case; long runs
# print a sample of fds/threads/RSS every SECONDS/12. CASE picks one case (the two can run at
# once in two shells).
#   bash scripts/soak.sh 3600                 # the 1-hour soak, both cases (CI runs 30 s)
#   bash scripts/soak.sh 3600 cache-dir       # one case: no-cache-dir | cache-dir
set -euo pipefail
cd "$(dirname "$0")/.."
export LTXVFS_SOAK_SECONDS="${1:-3600}"
case_filter=()
if [ -n "${2:-}" ]; then case_filter=(-k "[$2]"); fi
python3 -m pytest tests/integration/test_soak.py "${case_filter[@]}" -q -s -p no:cacheprovider 2>&1 \
  | grep -E "^soak |passed|failed|Error"

#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 20), seeded from the LTX fixtures
# (tests/fixtures/*: whole files for the decoder, their tails for the page index) and the
# seed files under fuzz/seeds/. Needs nightly and cargo-fuzz (scripts/setup.sh installs it).
#   bash scripts/fuzz.sh            # 20 s per target (CI)
#   bash scripts/fuzz.sh 1800       # 30 min per target
#   bash scripts/fuzz.sh 60 ltx_decode
# A crash leaves its input in fuzz/artifacts/<target>/; make it a regression test
# (tests/fuzz_regressions.rs) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ltx_decode page_index restore_plan replica_url time_grammar)

corpus_root="${FUZZ_CORPUS:-${CARGO_TARGET_DIR:-target}/fuzz-corpus}"
mkdir -p "$corpus_root"/{ltx_decode,page_index,restore_plan,replica_url,time_grammar}
i=0
while IFS= read -r f; do
  i=$((i + 1))
  cp "$f" "$corpus_root/ltx_decode/fixture-$i.ltx"
  tail -c 512 "$f" > "$corpus_root/page_index/tail-$i"
done < <(find tests/fixtures -name '*.ltx' -size -64k | sort)
cp fuzz/seeds/replica_url/* "$corpus_root/replica_url/"
cp fuzz/seeds/time_grammar/* "$corpus_root/time_grammar/"
head -c 400 /dev/zero | tr '\0' '\1' > "$corpus_root/restore_plan/ones"

# The fuzz crate has its own target dir so its sanitizer build never mixes with the main one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/fuzz"
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${secs}s"
  start=$(date +%s)
  log="$corpus_root/$t.log"
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$corpus_root/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -a -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)" "$log" || true
  echo "fuzz: $t ran $(( $(date +%s) - start ))s, exit $status"
  [ "$status" -eq 0 ] || { echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)" >&2; exit 1; }
done

#!/usr/bin/env bash
# The soak of RELIABILITY.md: tests/integration/test_soak.py (live replica at ~5 transactions
# a second, one long-lived reader, with and without cache_dir) for SECONDS per case.
#   bash scripts/soak.sh 3600       # the 1-hour soak (CI runs 30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
export LTXVFS_SOAK_SECONDS="${1:-3600}"
python3 -m pytest tests/integration/test_soak.py -q -s -p no:cacheprovider 2>&1 | grep -E "^soak |passed|failed"

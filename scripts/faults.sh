#!/usr/bin/env bash
# The fault table of RELIABILITY.md: tests/integration/test_faults.py with more queries per mode
# (fresh processes and one long-lived process) and more corrupt-file trials, one line per mode.
#   bash scripts/faults.sh [FRESH] [LONG] [TRIALS]   # default 200 fresh, 500 long-lived, 20 trials
# Needs the release extension (cargo build --release -p litestream-vfs) and SeaweedFS.
set -euo pipefail
cd "$(dirname "$0")/.."
export LTXVFS_FAULT_FRESH="${1:-200}" LTXVFS_FAULT_LONG="${2:-500}" LTXVFS_CORRUPT_TRIALS="${3:-20}"
python3 -m pytest tests/integration/test_faults.py -q -s -k "fault_mode or corrupt_files" -p no:cacheprovider 2>&1 |
  grep --line-buffered -E "^faults |^corrupt |passed|failed"

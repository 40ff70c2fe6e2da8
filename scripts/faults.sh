#!/usr/bin/env bash
# The fault table of RELIABILITY.md: tests/integration/test_faults.py with more queries per mode
# (fresh processes and one long-lived process), printing one line per mode.
#   bash scripts/faults.sh [FRESH] [LONG]     # default 60 fresh, 200 long-lived
# Needs the release extension (cargo build --release -p litestream-vfs) and SeaweedFS.
set -euo pipefail
cd "$(dirname "$0")/.."
export LTXVFS_FAULT_FRESH="${1:-60}" LTXVFS_FAULT_LONG="${2:-200}"
python3 -m pytest tests/integration/test_faults.py -q -s -k fault_mode -p no:cacheprovider 2>&1 |
  grep -E "^faults |passed|failed"

#!/usr/bin/env bash
# End-to-end pull benchmark: skiff vs dockerd vs podman (each skipped when not installed).
#
#   benches/e2e/pull-bench.sh [--rounds N] [--engines skiff,dockerd,podman] [--skiff BIN]
#                             [--workdir DIR] [--out DIR] [--keep-failed]
#
# Builds (or reuses) the bench image with build-bench-image.sh, pushes it to a private
# docker-registry on 127.0.0.1, then runs N rounds (default 5) alternating the engines, each
# with a fresh data root. Prints medians and skiff/peer ratios; raw numbers go to
# bench-out/pull-bench-*.json. Needs root. Build skiff first: cargo build --release -p skiff.
# The measuring lives in pull_bench.py (python3 stdlib); see docs/benchmarks.md.
set -euo pipefail
command -v python3 >/dev/null || { echo "$0: python3 is missing; apt-get install python3" >&2; exit 1; }
exec python3 "$(dirname "$0")/pull_bench.py" "$@"

#!/usr/bin/env bash
# End-to-end container benchmark: skiff vs dockerd vs podman (each skipped when not installed).
#
#   benches/e2e/run-bench.sh [--rounds N] [--engines skiff,dockerd,podman] [--skiff BIN]
#                            [--skiff-runtime NAME] [--workdir DIR] [--out DIR]
#
# docker run --rm latency, run -d / stop, RSS of daemon + shims with 20 idle containers,
# /containers/json latency on a kept-alive connection, and the runc floor. Needs root.
# Build skiff first: cargo build --release -p skiff. See docs/benchmarks.md.
set -euo pipefail
command -v python3 >/dev/null || { echo "$0: python3 is missing; apt-get install python3" >&2; exit 1; }
exec python3 "$(dirname "$0")/run_bench.py" "$@"

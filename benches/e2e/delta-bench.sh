#!/usr/bin/env bash
# Delta benchmark: skiff deltas vs balenaEngine's method (rdiff -b 512, gzipped), xdelta3 -9,
# zstd --patch-from -19 --long, whole-tar bsdiff and a full gzip layer, on a corpus of
# image-layer pairs:
#   os      two debootstrap minbase bookworm roots; v2 = v1 + bookworm-updates/security
#           upgrades + a few more packages (an OS update)
#   os-upgrade  the same v1; v2 = v1 + the upgrades only
#   app     a Rust program compiled twice with a one-line source change (a rebuilt binary)
#   config  the same application layer with one config value changed
#
#   benches/e2e/delta-bench.sh [--workdir DIR] [--skiff BIN] [--rounds N] [--skip TOOL,...]
#
# The corpus is built once and cached in the workdir (default /var/tmp/skiff-bench/delta).
# Needs root (debootstrap, chroot) and the Debian packages debootstrap, rdiff, xdelta3, zstd,
# bsdiff. Build skiff first: cargo build --release -p skiff. Prints a markdown table (the one
# in docs/benchmarks.md) and writes the raw numbers to <workdir>/delta-bench.json.
# The measuring lives in delta_bench.py (python3 stdlib).
set -euo pipefail
command -v python3 >/dev/null || { echo "$0: python3 is missing; apt-get install python3" >&2; exit 1; }
exec python3 "$(dirname "$0")/delta_bench.py" "$@"

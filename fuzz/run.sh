#!/usr/bin/env bash
# Runs every fuzz target for a short time (CI smoke run; see README.md).
#   fuzz/run.sh [seconds-per-target] [target...]
# Needs a nightly toolchain and cargo-fuzz. New inputs go to a scratch corpus, so the
# checked-in seed corpora stay as they are. Exits non-zero on the first crash.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "corpus/$t"
    echo "== $t: ${secs}s"
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -artifact_prefix="artifacts/$t/"
done

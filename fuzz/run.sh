#!/usr/bin/env bash
# Runs every fuzz target for a while, one after the other, with the regression inputs as
# seeds: `fuzz/run.sh [seconds per target, default 300]`. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the
# sanitizer flags. A crash leaves its input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in key_format header_map; do
  mkdir -p "fuzz/corpus/$target"
  echo "==> $target for ${seconds}s"
  cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=4096
done

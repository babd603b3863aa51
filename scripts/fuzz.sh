#!/usr/bin/env bash
# Fuzzes the parsers for SECONDS each (default 60): the manifest/YAML
# splitter, kubectl's JSONPath, label selectors, option maps and Rhai <-> JSON
# conversion. Targets and driver: runtime/fuzz/; corpus: runtime/fuzz/corpus/.
# A crash fails with the input saved under target/fuzz/crashes/ and the seed
# to reproduce it (MESH_RUN_FUZZ_SEED=...); a hang aborts, input in target/fuzz/hangs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
targets=(manifest jsonpath selector options rhai_json)
cargo test --lib --no-run --quiet
for target in "${targets[@]}"; do
    MESH_RUN_FUZZ_SECS=$seconds cargo test --quiet --lib "fuzz::targets::fuzz_$target" -- --exact --nocapture 2>&1 |
        grep -E '^fuzz |panicked|input|reproduce|test result: FAILED' || true
    [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "fuzz: $target failed" >&2; exit 1; }
done

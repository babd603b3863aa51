#!/usr/bin/env bash
# Regenerates the primitive reference in README.md from `mesh-run doc` (the registry).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet
ref=$(mktemp)
target/debug/mesh-run doc >"$ref"
awk -v ref="$ref" '
  /^<!-- BEGIN PRIMITIVES/ { print; while ((getline line < ref) > 0) print line; skip = 1; next }
  /^<!-- END PRIMITIVES -->/ { skip = 0 }
  !skip { print }
' README.md >README.md.new
mv README.md.new README.md
rm -f "$ref"

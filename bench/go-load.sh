#!/usr/bin/env bash
# Time from invoking `sykli graph` to the graph being loaded and printed, for a sykli.go
# project: the first run compiles the pipeline into .sykli/bin/, the second reuses it.
# Usage: bench/go-load.sh [path/to/sykli]   (default: builds and uses target/release/sykli)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sykli="${1:-}"
if [[ -z "$sykli" ]]; then
  cargo build --quiet --release -p sykli --bin sykli --manifest-path "$root/Cargo.toml"
  sykli="${CARGO_TARGET_DIR:-$root/target}/release/sykli"
fi
project="$(mktemp -d)"
trap 'rm -rf "$project"' EXIT
SYKLI_GO_SDK="$root/sdk-go" "$sykli" init --go "$project" >/dev/null

ms() { echo $(( ($2 - $1) / 1000000 )); }
run() {
  local t0 t1
  t0=$(date +%s%N)
  "$sykli" graph "$project" >/dev/null
  t1=$(date +%s%N)
  ms "$t0" "$t1"
}
first=$(run)
second=$(run)
third=$(run)
echo "sykli.go load, first run (go build):      ${first} ms"
echo "sykli.go load, second run (cached binary): ${second} ms"
echo "sykli.go load, third run (cached binary):  ${third} ms"
echo "target: second run < 100 ms"

#!/usr/bin/env bash
# Time from invoking `sykli run` on a sykli.go project to its first task starting (the task
# writes the time it started, in ns). The first run compiles the pipeline program into
# .sykli/bin/; later runs reuse that binary (keyed by the BLAKE3 of the sources, go.mod/go.sum
# and `go version`). Prints figures; it is not a test.
# Usage: bench/go-first-task.sh [path/to/sykli]   (default: builds and uses target/release/sykli)
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
# The starter's first task records when it started.
sed -i 's|echo hello from sykli|date +%s%N > started.ns|' "$project/sykli.go"

ms() { echo $(( ($2 - $1) / 1000000 )); }
first_task() {
  local t0
  rm -f "$project/started.ns"
  t0=$(date +%s%N)
  "$sykli" run --no-cache "$project" >/dev/null
  ms "$t0" "$(cat "$project/started.ns")"
}
first=$(first_task)
echo "sykli run -> first task started, sykli.go, first run (go build):       ${first} ms"
for i in 2 3 4 5; do
  echo "sykli run -> first task started, sykli.go, run $i (cached binary):     $(first_task) ms"
done
echo "target: runs after the first < 100 ms"

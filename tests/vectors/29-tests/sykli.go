// Test vector 29-tests: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("unit").Run("cargo test").Inputs("src/**").Tests(sykli.TestsCargo)
	s.Task("go").Run("go test -json ./...").Tests(sykli.TestsGoJSON)
	s.Task("tap").Run("./t.sh").Tests(sykli.TestsTAP).Sandbox()
	s.Emit()
}

// Test vector 16-requires: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("gpu-test").Run("pytest -m gpu").Requires("linux", "x86_64").Requires("gpu")
	s.Emit()
}

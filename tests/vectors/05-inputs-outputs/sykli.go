// Test vector 05-inputs-outputs: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").
		Run("cargo build").
		Inputs("src/**/*.rs", "Cargo.toml").
		Inputs("Cargo.lock").
		Output("bin", "target/release/app").
		Outputs("a.txt", "b.txt").
		Outputs("c.txt")
	s.Emit()
}

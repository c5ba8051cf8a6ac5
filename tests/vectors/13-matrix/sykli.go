// Test vector 13-matrix: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("test").
		Run("cargo test").
		Matrix("rust", "stable", "beta").
		Matrix("os", "linux", "macos").
		Matrix("rust", "1.95", "stable", "nightly")
	s.Emit()
}

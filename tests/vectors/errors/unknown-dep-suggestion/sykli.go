// Test vector errors/unknown-dep-suggestion: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("test").Run("make test").After("biuld")
	s.Emit()
}

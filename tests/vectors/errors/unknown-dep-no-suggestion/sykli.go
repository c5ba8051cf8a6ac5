// Test vector errors/unknown-dep-no-suggestion: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("tests").Run("make test").After("test", "deploy")
	s.Emit()
}

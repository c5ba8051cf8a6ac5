// Test vector errors/unknown-dep-no-suggestion: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("unit").Run("make test").After("deploy")
	s.Emit()
}

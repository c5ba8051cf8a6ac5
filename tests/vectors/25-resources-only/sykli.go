// Test vector 25-resources-only: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Cache("unused")
	s.Task("a").Run("true")
	s.Emit()
}

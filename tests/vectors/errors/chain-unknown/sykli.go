// Test vector errors/chain-unknown: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Chain("build", "nope")
	s.Emit()
}

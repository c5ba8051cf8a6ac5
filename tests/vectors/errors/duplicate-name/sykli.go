// Test vector errors/duplicate-name: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Run("x")
	s.Task("a").Run("y")
	s.Emit()
}

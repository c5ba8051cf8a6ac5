// Test vector errors/self-dependency: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Run("x").After("a")
	s.Emit()
}

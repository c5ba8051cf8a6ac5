// Test vector errors/cycle: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("x").Run("x")
	s.Task("b").Run("b").After("a")
	s.Task("a").Run("a").After("x", "c")
	s.Task("c").Run("c").After("b")
	s.Emit()
}

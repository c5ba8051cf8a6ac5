// Test vector errors/cycle-shortest-path: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Run("a").After("b", "c")
	s.Task("b").Run("b").After("c")
	s.Task("c").Run("c").After("a")
	s.Task("x").Run("x").After("y")
	s.Task("y").Run("y").After("x")
	s.Emit()
}

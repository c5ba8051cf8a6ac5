// Test vector errors/many-errors: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("test").After("buld")
	s.Task("").Run("x")
	s.Task("build").Run("again")
	s.Task("p").Run("p").After("q")
	s.Task("q").Run("q").After("p")
	s.Chain("build", "nope")
	s.Emit()
}

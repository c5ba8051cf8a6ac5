// Test vector errors/many-errors-with-cycle: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("test").After("buld")
	s.Task("p").Run("p").After("q").Env("", "v")
	s.Task("q").Run("q").After("p", "q")
	s.Chain("build", "nope", "test")
	s.Emit()
}

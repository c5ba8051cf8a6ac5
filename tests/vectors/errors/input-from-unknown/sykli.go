// Test vector errors/input-from-unknown: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("test").Run("x").InputFrom("biuld", "bin", "app")
	s.Task("build").Run("make")
	s.Emit()
}

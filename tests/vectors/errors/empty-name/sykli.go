// Test vector errors/empty-name: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("").Run("true")
	s.Emit()
}

// Test vector 08-container-only: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("test").Container("golang:1.26").Run("go test ./...")
	s.Emit()
}

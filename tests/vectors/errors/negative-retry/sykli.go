// Test vector errors/negative-retry: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Run("x").Retry(-1)
	s.Emit()
}

// Test vector errors/no-command: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Env("K", "V")
	s.Emit()
}

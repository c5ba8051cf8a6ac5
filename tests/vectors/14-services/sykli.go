// Test vector 14-services: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("integration").
		Run("go test -tags=integration ./...").
		Service("postgres:16", "db").
		Service("redis:7", "cache")
	s.Emit()
}

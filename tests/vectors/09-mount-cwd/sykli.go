// Test vector 09-mount-cwd: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Dir(".").Globs("**/*.go", "go.mod")
	s.Task("test").Container("golang:1.26").MountCwd().Run("go test ./...")
	s.Task("lint").Container("golang:1.26").Workdir("/elsewhere").MountCwd().Run("go vet ./...")
	s.Emit()
}

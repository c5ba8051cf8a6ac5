// Test vector 20-task-type: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("fmt").Run("cargo fmt --check").TaskType("lint")
	s.Task("test").Run("cargo test").Container("rust:1.95").TaskType("test")
	s.Emit()
}

// Test vector errors/after-group-unknown: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Task("deploy").Run("./deploy").AfterGroup(s.Parallel("build", "zzz"))
	s.Emit()
}

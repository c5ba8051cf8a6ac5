// Test vector 23-target-remote-prefer-nocache: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("a").Run("make").Target("docker")
	s.Task("b").Run("make").Remote()
	s.Task("c").Run("make").Prefer(sykli.Remote)
	s.Task("d").Run("make").Prefer(sykli.Local).NoCache()
	s.Task("e").Run("make").Inputs("**/*.c").NoCache().Remote().Prefer(sykli.Remote).Target("k8s")
	s.Emit()
}

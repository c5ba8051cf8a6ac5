// Test vector errors/task-field-checks: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	up := s.Dir("../outside")
	s.Task("a").
		Run("x").
		Mount(up, "relative").
		SuccessCriteria(sykli.ExitCode(0)).
		SuccessCriteria(sykli.ExitCode(1)).
		SuccessCriteria(sykli.FileExists("../escape")).
		Service("", "db").
		Matrix("os").
		Matrix("v", "1", "1")
	s.Gate("g").EnvVar("")
	s.Emit()
}

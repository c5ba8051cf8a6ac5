// Test vector 19-success-criteria: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").
		Run("make").
		SuccessCriteria(sykli.ExitCode(0)).
		SuccessCriteria(sykli.FileExists("out/app")).
		SuccessCriteria(sykli.FileNonEmpty("out/app.sha256"))
	s.Task("expect-three").Run("./check").SuccessCriteria(sykli.ExitCode(3))
	s.Emit()
}

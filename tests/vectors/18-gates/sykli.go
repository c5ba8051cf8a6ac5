// Test vector 18-gates: must print expected.json byte for byte with --emit.
package main

import (
	"time"

	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make")
	s.Gate("approve").After("build")
	s.Gate("env-gate").After("approve").EnvVar("DEPLOY_APPROVED").Message("Approve the deploy?")
	s.Gate("file-gate").File("/tmp/approved").Timeout(90 * time.Second)
	s.Gate("prompt-gate").Message("Ship it?").Prompt().Timeout(2 * time.Hour)
	s.Task("deploy").Run("./deploy").After("env-gate", "file-gate", "prompt-gate")
	s.Emit()
}

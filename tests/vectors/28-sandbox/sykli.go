// Test vector 28-sandbox: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make").Inputs("src/**").Output("app", "out/app").Sandbox()
	s.Task("fetch").Run("curl -sf https://example.com").SandboxWith(sykli.SandboxOptions{
		Network:  true,
		MemoryMB: 512,
		CPUs:     1.5,
		Pids:     256,
		Paths:    []string{"/opt/tools"},
	})
	s.Emit()
}

// Test vector errors/capabilities-and-outputs: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("db").Run("db").Provides("pg")
	s.Task("db2").Run("db").Provides("pg")
	s.Task("build").Run("make").Output("bin", "out/app")
	s.Task("test").Run("test").InputFrom("build", "lib", "lib").Needs("redis")
	s.Emit()
}

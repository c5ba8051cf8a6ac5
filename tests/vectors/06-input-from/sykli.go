// Test vector 06-input-from: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("build").Run("make").Output("bin", "out/app")
	s.Task("test").
		Run("./app --test").
		After("lint").
		InputFrom("build", "bin", "app").
		InputFrom("lint", "report", "lint.txt")
	s.Task("lint").Run("lint > report.txt").Output("report", "report.txt")
	s.Emit()
}

// Test vector 22-chain-parallel: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("fmt").Run("fmt")
	s.Task("lint").Run("lint")
	unit := s.Task("unit").Run("unit")
	integration := s.Task("integration").Run("integration")
	pkg := s.Task("package").Run("package")
	s.Task("publish").Run("publish")
	s.Chain("fmt", "lint", "unit")
	checks := s.Parallel("fmt", "lint")
	tests := s.Parallel("unit", "integration")
	unit.AfterGroup(checks)
	integration.AfterGroup(checks)
	pkg.AfterGroup(tests)
	s.Chain("package", "publish")
	s.Emit()
}

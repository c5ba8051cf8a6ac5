// Test vector 10-when-raw: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("main-only").Run("deploy").When("branch == 'main'")
	s.Task("shorthand").Run("deploy").When("branch:main")
	s.Task("double-quoted").Run("deploy").When(`event == "push" && !tag`)
	s.Task("replaced").Run("deploy").When("branch == 'dev'").When("ci == true")
	s.Emit()
}

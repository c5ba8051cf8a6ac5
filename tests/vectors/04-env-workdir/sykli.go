// Test vector 04-env-workdir: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("env").
		Run("env").
		Env("b", "2").
		Env("a", "1").
		Env("B", "3").
		Env("_x", "4").
		Env("10", "5").
		Env("9", "6").
		Env("a", "override").
		Env("é", "e").
		Env("😀", "smile").
		Env("ｚ", "z").
		Workdir("sub/dir")
	s.Emit()
}

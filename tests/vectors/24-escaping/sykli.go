// Test vector 24-escaping: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("html <b>&</b>").
		Run(`echo "<script>alert('x')</script>" && cat C:\dir`).
		Env("CTRL", "\x01\x1f\x7f").
		Env("BF", "\b\f").
		Env("SEP", "line\u2028para\u2029end").
		Env("UNICODE", "héllo wörld ✓ 日本 😀").
		Env("WS", "tab\tnewline\ncr\r").
		Env("QUOTE", `say "hi" \ bye`)
	s.Emit()
}

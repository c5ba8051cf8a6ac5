// Test vector 03-after-order-dedup: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("c").Run("echo c").After("b")
	s.Task("a").Run("echo a")
	s.Task("b").Run("echo b").After("a")
	s.Task("d").Run("echo d").After("b", "a", "b").After("a", "c")
	s.Emit()
}

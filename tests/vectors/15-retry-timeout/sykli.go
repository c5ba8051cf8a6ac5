// Test vector 15-retry-timeout: must print expected.json byte for byte with --emit.
package main

import (
	"time"

	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("zero").Run("true").Retry(0)
	s.Task("retry-and-timeout").Run("true").Retry(3).Timeout(5 * time.Minute)
	s.Task("round-up").Run("true").Timeout(1500 * time.Millisecond)
	s.Task("tiny").Run("true").Timeout(time.Millisecond)
	s.Task("zero-timeout").Run("true").Timeout(0)
	s.Task("replaced").Run("true").Retry(2).Retry(1)
	s.Emit()
}

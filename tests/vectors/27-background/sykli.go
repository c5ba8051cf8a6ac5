// Test vector 27-background: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("engine").Run("dockerd").Background("docker info", 90)
	s.Task("web").Run("python3 -m http.server 8080").Background("curl -sf http://127.0.0.1:8080/", 5)
	s.Task("test").Run("make test").After("engine", "web")
	s.Emit()
}

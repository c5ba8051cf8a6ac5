// Test vector 07-containers-mounts: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	src := s.Dir(".")
	web := s.Dir("web").Globs("**/*.ts", "package.json")
	cargo := s.Cache("cargo-registry")
	s.Task("build").
		Container("rust:1.95").
		Mount(src, "/src").
		MountCache(cargo, "/usr/local/cargo/registry").
		Workdir("/src").
		Run("cargo build")
	s.Task("web").Container("node:22").Mount(web, "/web").Run("npm ci")
	s.Emit()
}

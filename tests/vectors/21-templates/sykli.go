// Test vector 21-templates: must print expected.json byte for byte with --emit.
package main

import (
	"time"

	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	src := s.Dir(".")
	cargo := s.Cache("cargo")
	rust := s.Template().
		Container("rust:1.95").
		Workdir("/src").
		Env("CARGO_TERM_COLOR", "always").
		Env("RUST_BACKTRACE", "1").
		Inputs("src/**", "Cargo.toml").
		Mount(src, "/src").
		MountCache(cargo, "/root/.cargo").
		Secret("CARGO_TOKEN").
		Secrets("SCCACHE_KEY").
		Retry(1).
		Timeout(10 * time.Minute).
		Requires("linux").
		Target("docker").
		Prefer(sykli.Local)
	s.Task("build").From(rust).Run("cargo build")
	s.Task("test").
		Env("RUST_BACKTRACE", "full").
		From(rust).
		Env("RUST_LOG", "debug").
		Inputs("tests/**").
		Retry(0).
		Run("cargo test").
		After("build")
	alpine := s.Template().MountCwd().Container("alpine:3")
	s.Task("cwd").From(alpine).Run("ls")
	s.Emit()
}

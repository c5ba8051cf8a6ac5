// Test vector 26-every-field: must print expected.json byte for byte with --emit.
package main

import (
	"time"

	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	src := s.Dir(".")
	cache := s.Cache("deps")
	s.Task("dep").Run("true").Output("out", "o.txt")
	s.Task("prov").Run("true").Provides("cap")
	s.Task("all").
		Run("run all").
		After("dep").
		Env("K", "V").
		Workdir("/w").
		Inputs("in/**").
		Output("report", "r.txt").
		InputFrom("dep", "out", "o.txt").
		Container("img:1").
		Mount(src, "/w").
		MountCache(cache, "/c").
		Service("svc:1", "svc").
		Matrix("m", "1", "2").
		Secret("S").
		SecretFrom("R", sykli.FromEnv("R_KEY")).
		WhenCond(sykli.Branch("main")).
		Retry(2).
		Timeout(60 * time.Second).
		Requires("linux").
		Provides("all-done").
		Needs("cap").
		SuccessCriteria(sykli.ExitCode(0)).
		TaskType("build").
		Remote().
		Prefer(sykli.Remote).
		NoCache().
		Target("docker")
	s.Emit()
}

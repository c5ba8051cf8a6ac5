// Test vector 11-when-cond: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("branch").Run("true").WhenCond(sykli.Branch("main"))
	s.Task("branch-glob").Run("true").WhenCond(sykli.Branch("release/*"))
	s.Task("tag").Run("true").WhenCond(sykli.Tag("v1.0.0"))
	s.Task("tag-glob").Run("true").WhenCond(sykli.Tag("v*"))
	s.Task("has-tag").Run("true").WhenCond(sykli.HasTag())
	s.Task("tag-empty").Run("true").WhenCond(sykli.Tag(""))
	s.Task("event").Run("true").WhenCond(sykli.Event("pull_request"))
	s.Task("ci").Run("true").WhenCond(sykli.InCI())
	s.Task("and").Run("true").WhenCond(sykli.Branch("main").And(sykli.InCI()))
	s.Task("or-and-not").Run("true").WhenCond(sykli.Branch("main").Or(sykli.Tag("v*")).And(sykli.Not(sykli.Event("pull_request"))))
	s.Task("not-and-or").Run("true").WhenCond(sykli.Not(sykli.Branch("main").And(sykli.HasTag())).Or(sykli.InCI()))
	s.Task("method-not").Run("true").WhenCond(sykli.InCI().Not())
	s.Emit()
}

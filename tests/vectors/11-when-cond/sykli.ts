// Test vector 11-when-cond: must print expected.json byte for byte with --emit.
import { Pipeline, branch, tag, hasTag, event, inCI, not } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("branch").run("true").whenCond(branch("main"));
p.task("branch-glob").run("true").whenCond(branch("release/*"));
p.task("tag").run("true").whenCond(tag("v1.0.0"));
p.task("tag-glob").run("true").whenCond(tag("v*"));
p.task("has-tag").run("true").whenCond(hasTag());
p.task("tag-empty").run("true").whenCond(tag(""));
p.task("event").run("true").whenCond(event("pull_request"));
p.task("ci").run("true").whenCond(inCI());
p.task("and").run("true").whenCond(branch("main").and(inCI()));
p.task("or-and-not").run("true").whenCond(branch("main").or(tag("v*")).and(not(event("pull_request"))));
p.task("not-and-or").run("true").whenCond(not(branch("main").and(hasTag())).or(inCI()));
p.task("method-not").run("true").whenCond(inCI().not());
p.emit();

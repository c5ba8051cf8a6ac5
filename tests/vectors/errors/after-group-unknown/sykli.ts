// Test vector errors/after-group-unknown: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("deploy").run("./deploy").afterGroup(p.parallel("build", "zzz"));
p.emit();

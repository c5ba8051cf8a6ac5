// Test vector errors/unknown-dep-no-suggestion: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("unit").run("make test").after("deploy");
p.emit();

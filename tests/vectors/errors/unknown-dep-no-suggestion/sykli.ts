// Test vector errors/unknown-dep-no-suggestion: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("tests").run("make test").after("test", "deploy");
p.emit();

// Test vector errors/unknown-dep-suggestion: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("test").run("make test").after("biuld");
p.emit();

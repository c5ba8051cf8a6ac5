// Test vector errors/parallel-unknown: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.parallel("build", "zzz");
p.emit();

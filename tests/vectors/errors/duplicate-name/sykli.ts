// Test vector errors/duplicate-name: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").run("x");
p.task("a").run("y");
p.emit();

// Test vector errors/self-dependency: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").run("x").after("a");
p.emit();

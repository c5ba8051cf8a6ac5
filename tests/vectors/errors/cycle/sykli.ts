// Test vector errors/cycle: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("x").run("x");
p.task("b").run("b").after("a");
p.task("a").run("a").after("x", "c");
p.task("c").run("c").after("b");
p.emit();

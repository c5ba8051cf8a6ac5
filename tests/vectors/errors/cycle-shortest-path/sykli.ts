// Test vector errors/cycle-shortest-path: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").run("a").after("b", "c");
p.task("b").run("b").after("c");
p.task("c").run("c").after("a");
p.task("x").run("x").after("y");
p.task("y").run("y").after("x");
p.emit();

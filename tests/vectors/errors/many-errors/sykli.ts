// Test vector errors/many-errors: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("test").after("buld");
p.task("").run("x");
p.task("build").run("again");
p.task("p").run("p").after("q");
p.task("q").run("q").after("p");
p.chain("build", "nope");
p.emit();

// Test vector errors/many-errors-with-cycle: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.task("test").after("buld");
p.task("p").run("p").after("q").env("", "v");
p.task("q").run("q").after("p", "q");
p.chain("build", "nope", "test");
p.emit();

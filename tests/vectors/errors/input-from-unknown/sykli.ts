// Test vector errors/input-from-unknown: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("test").run("x").inputFrom("biuld", "bin", "app");
p.task("build").run("make");
p.emit();

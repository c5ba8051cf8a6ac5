// Test vector errors/chain-unknown: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.chain("build", "nope");
p.emit();

// Test vector errors/no-command: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").env("K", "V");
p.emit();

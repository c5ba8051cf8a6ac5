// Test vector errors/empty-env-key: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").run("x").env("", "v");
p.emit();

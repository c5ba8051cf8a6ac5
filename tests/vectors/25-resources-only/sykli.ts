// Test vector 25-resources-only: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.cache("unused");
p.task("a").run("true");
p.emit();

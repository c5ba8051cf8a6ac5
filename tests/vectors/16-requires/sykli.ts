// Test vector 16-requires: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("gpu-test").run("pytest -m gpu").requires("linux", "x86_64").requires("gpu");
p.emit();

// Test vector 20-task-type: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("fmt").run("cargo fmt --check").taskType("lint");
p.task("test").run("cargo test").container("rust:1.95").taskType("test");
p.emit();

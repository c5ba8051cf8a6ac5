// Test vector 13-matrix: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("test")
  .run("cargo test")
  .matrix("rust", ["stable", "beta"])
  .matrix("os", ["linux", "macos"])
  .matrix("rust", ["1.95", "stable", "nightly"]);
p.emit();

// Test vector 05-inputs-outputs: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build")
  .run("cargo build")
  .inputs("src/**/*.rs", "Cargo.toml")
  .inputs("Cargo.lock")
  .output("bin", "target/release/app")
  .outputs("a.txt", "b.txt")
  .outputs("c.txt");
p.emit();

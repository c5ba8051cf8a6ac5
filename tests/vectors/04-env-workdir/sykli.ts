// Test vector 04-env-workdir: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("env")
  .run("env")
  .env("b", "2")
  .env("a", "1")
  .env("B", "3")
  .env("_x", "4")
  .env("10", "5")
  .env("9", "6")
  .env("a", "override")
  .env("é", "e")
  .env("😀", "smile")
  .env("ｚ", "z")
  .workdir("sub/dir");
p.emit();

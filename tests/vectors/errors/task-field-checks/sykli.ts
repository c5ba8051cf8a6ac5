// Test vector errors/task-field-checks: must print expected.json byte for byte with --emit.
import { Pipeline, exitCode, fileExists } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
const up = p.dir("../outside");
p.task("a")
  .run("x")
  .mount(up, "relative")
  .successCriteria(exitCode(0))
  .successCriteria(exitCode(1))
  .successCriteria(fileExists("../escape"))
  .service("", "db")
  .matrix("os", [])
  .matrix("v", ["1", "1"]);
p.gate("g").envVar("");
p.emit();

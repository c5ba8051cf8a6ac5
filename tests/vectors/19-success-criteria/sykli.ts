// Test vector 19-success-criteria: must print expected.json byte for byte with --emit.
import { Pipeline, exitCode, fileExists, fileNonEmpty } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build")
  .run("make")
  .successCriteria(exitCode(0))
  .successCriteria(fileExists("out/app"))
  .successCriteria(fileNonEmpty("out/app.sha256"));
p.task("expect-three").run("./check").successCriteria(exitCode(3));
p.emit();

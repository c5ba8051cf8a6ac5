// Test vector 06-input-from: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make").output("bin", "out/app");
p.task("test")
  .run("./app --test")
  .after("lint")
  .inputFrom("build", "bin", "app")
  .inputFrom("lint", "report", "lint.txt");
p.task("lint").run("lint > report.txt").output("report", "report.txt");
p.emit();

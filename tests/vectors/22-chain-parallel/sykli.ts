// Test vector 22-chain-parallel: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("fmt").run("fmt");
p.task("lint").run("lint");
const unit = p.task("unit").run("unit");
const integration = p.task("integration").run("integration");
const pkg = p.task("package").run("package");
p.task("publish").run("publish");
p.chain("fmt", "lint", "unit");
const checks = p.parallel("fmt", "lint");
const tests = p.parallel("unit", "integration");
unit.afterGroup(checks);
integration.afterGroup(checks);
pkg.afterGroup(tests);
p.chain("package", "publish");
p.emit();

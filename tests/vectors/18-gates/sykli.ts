// Test vector 18-gates: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make");
p.gate("approve").after("build");
p.gate("env-gate").after("approve").envVar("DEPLOY_APPROVED").message("Approve the deploy?");
p.gate("file-gate").file("/tmp/approved").timeout(90);
p.gate("prompt-gate").message("Ship it?").prompt().timeout(2 * 3600);
p.task("deploy").run("./deploy").after("env-gate", "file-gate", "prompt-gate");
p.emit();

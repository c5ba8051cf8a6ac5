// Test vector 15-retry-timeout: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("zero").run("true").retry(0);
p.task("retry-and-timeout").run("true").retry(3).timeout(300);
p.task("round-up").run("true").timeout(1.5);
p.task("tiny").run("true").timeout(0.001);
p.task("zero-timeout").run("true").timeout(0);
p.task("replaced").run("true").retry(2).retry(1);
p.emit();

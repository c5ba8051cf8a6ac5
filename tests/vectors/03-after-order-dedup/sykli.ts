// Test vector 03-after-order-dedup: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("c").run("echo c").after("b");
p.task("a").run("echo a");
p.task("b").run("echo b").after("a");
p.task("d").run("echo d").after("b", "a", "b").after("a", "c");
p.emit();

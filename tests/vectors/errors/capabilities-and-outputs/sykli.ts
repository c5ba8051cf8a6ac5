// Test vector errors/capabilities-and-outputs: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("db").run("db").provides("pg");
p.task("db2").run("db").provides("pg");
p.task("build").run("make").output("bin", "out/app");
p.task("test").run("test").inputFrom("build", "lib", "lib").needs("redis");
p.emit();

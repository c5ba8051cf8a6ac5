// Test vector 10-when-raw: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("main-only").run("deploy").when("branch == 'main'");
p.task("shorthand").run("deploy").when("branch:main");
p.task("double-quoted").run("deploy").when('event == "push" && !tag');
p.task("replaced").run("deploy").when("branch == 'dev'").when("ci == true");
p.emit();

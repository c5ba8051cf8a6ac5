// Test vector 29-tests: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("unit").run("cargo test").inputs("src/**").tests("cargo");
p.task("go").run("go test -json ./...").tests("go-json");
p.task("tap").run("./t.sh").tests("tap").sandbox();
p.emit();

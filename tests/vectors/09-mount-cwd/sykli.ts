// Test vector 09-mount-cwd: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.dir(".").globs("**/*.go", "go.mod");
p.task("test").container("golang:1.26").mountCwd().run("go test ./...");
p.task("lint").container("golang:1.26").workdir("/elsewhere").mountCwd().run("go vet ./...");
p.emit();

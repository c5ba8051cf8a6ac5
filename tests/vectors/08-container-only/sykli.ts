// Test vector 08-container-only: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("test").container("golang:1.26").run("go test ./...");
p.emit();

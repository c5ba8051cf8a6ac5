// Test vector 27-background: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("engine").run("dockerd").background("docker info", 90);
p.task("web").run("python3 -m http.server 8080").background("curl -sf http://127.0.0.1:8080/", 5);
p.task("test").run("make test").after("engine", "web");
p.emit();

// Test vector 28-sandbox: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("build").run("make").inputs("src/**").output("app", "out/app").sandbox();
p.task("fetch")
  .run("curl -sf https://example.com")
  .sandbox({ network: true, memoryMb: 512, cpus: 1.5, pids: 256, paths: ["/opt/tools"] });
p.emit();

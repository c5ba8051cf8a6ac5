// Test vector 14-services: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("integration")
  .run("go test -tags=integration ./...")
  .service("postgres:16", "db")
  .service("redis:7", "cache");
p.emit();

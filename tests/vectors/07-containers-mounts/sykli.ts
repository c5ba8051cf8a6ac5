// Test vector 07-containers-mounts: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
const src = p.dir(".");
const web = p.dir("web").globs("**/*.ts", "package.json");
const cargo = p.cache("cargo-registry");
p.task("build")
  .container("rust:1.95")
  .mount(src, "/src")
  .mountCache(cargo, "/usr/local/cargo/registry")
  .workdir("/src")
  .run("cargo build");
p.task("web").container("node:22").mount(web, "/web").run("npm ci");
p.emit();

// Test vector 21-templates: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
const src = p.dir(".");
const cargo = p.cache("cargo");
const rust = p
  .template()
  .container("rust:1.95")
  .workdir("/src")
  .env("CARGO_TERM_COLOR", "always")
  .env("RUST_BACKTRACE", "1")
  .inputs("src/**", "Cargo.toml")
  .mount(src, "/src")
  .mountCache(cargo, "/root/.cargo")
  .secret("CARGO_TOKEN")
  .secrets("SCCACHE_KEY")
  .retry(1)
  .timeout(600)
  .requires("linux")
  .target("docker")
  .prefer("local");
p.task("build").from(rust).run("cargo build");
p.task("test")
  .env("RUST_BACKTRACE", "full")
  .from(rust)
  .env("RUST_LOG", "debug")
  .inputs("tests/**")
  .retry(0)
  .run("cargo test")
  .after("build");
const alpine = p.template().mountCwd().container("alpine:3");
p.task("cwd").from(alpine).run("ls");
p.emit();

// Test vector 26-every-field: must print expected.json byte for byte with --emit.
import { Pipeline, branch, fromEnv, exitCode } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
const src = p.dir(".");
const cache = p.cache("deps");
p.task("dep").run("true").output("out", "o.txt");
p.task("prov").run("true").provides("cap");
p.task("all")
  .run("run all")
  .after("dep")
  .env("K", "V")
  .workdir("/w")
  .inputs("in/**")
  .output("report", "r.txt")
  .inputFrom("dep", "out", "o.txt")
  .container("img:1")
  .mount(src, "/w")
  .mountCache(cache, "/c")
  .service("svc:1", "svc")
  .matrix("m", ["1", "2"])
  .secret("S")
  .secretFrom("R", fromEnv("R_KEY"))
  .whenCond(branch("main"))
  .retry(2)
  .timeout(60)
  .requires("linux")
  .provides("all-done")
  .needs("cap")
  .successCriteria(exitCode(0))
  .taskType("build")
  .remote()
  .prefer("remote")
  .noCache()
  .target("docker");
p.emit();

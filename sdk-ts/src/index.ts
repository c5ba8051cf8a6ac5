/**
 * The TypeScript SDK for sykli: CI/CD pipelines written as real code.
 *
 * ```ts
 * import { Pipeline, branch } from "@sykli/sdk";
 *
 * const p = new Pipeline();
 * p.task("lint").run("npm run lint");
 * p.task("test").run("npm test").after("lint");
 * p.task("deploy").run("./deploy.sh").after("test").whenCond(branch("main"));
 * p.emit();
 * ```
 *
 * The TypeScript, Go and Rust SDKs emit byte-identical JSON for the same pipeline.
 * @module
 */

export { Condition, branch, tag, hasTag, event, inCI, not } from "./condition.ts";
export {
  Pipeline,
  Task,
  Gate,
  Template,
  Group,
  Directory,
  CacheVolume,
  ValidationError,
  fromEnv,
  fromFile,
  fromVault,
  exitCode,
  fileExists,
  fileNonEmpty,
  type Placement,
  type TestFormat,
  type SecretSource,
  type Criterion,
} from "./pipeline.ts";
export type { SandboxOptions } from "./validate.ts";

/** The pipeline builder: tasks, gates, resources, templates and emission. */

import { writeSync } from "node:fs";

import type { Condition } from "./condition.ts";
import { render, sortedMap, type Json, type JsonObject } from "./json.ts";
import { validate, type SandboxOptions, type TaskData } from "./validate.ts";

/** Where a task prefers to run. */
export type Placement = "remote" | "local";

/**
 * The test output format a task's command prints: libtest's (`cargo test`), `go test -json`,
 * or TAP (see docs/reports.md).
 */
export type TestFormat = "cargo" | "go-json" | "tap";

/** Where a secret's value is read from; make one with {@link fromEnv} or {@link fromFile}. */
export interface SecretSource {
  /** `"env"` or `"file"`. */
  readonly source: "env" | "file" | "vault";
  /** The environment variable name or the file path. */
  readonly key: string;
}

/** Reads a secret from the runtime's environment variable `key`. */
export function fromEnv(key: string): SecretSource {
  return { source: "env", key };
}

/** Reads a secret from a Vault path (resolved where a Vault client is configured). */
export function fromVault(path: string): SecretSource {
  return { source: "vault", key: path };
}

/**
 * Reads a secret from a file at `path` relative to the project: a regular file inside it (no
 * absolute path, no `..`, no symlink out) of at most 64 KiB.
 */
export function fromFile(path: string): SecretSource {
  return { source: "file", key: path };
}

/** A success check applied after a task's command exits. */
export type Criterion =
  | { readonly type: "exit_code"; readonly equals: number }
  | { readonly type: "file_exists"; readonly path: string }
  | { readonly type: "file_non_empty"; readonly path: string };

/** Requires the exit code to equal `code`. */
export function exitCode(code: number): Criterion {
  return { type: "exit_code", equals: code };
}

/** Requires a file to exist (path relative to the workdir). */
export function fileExists(path: string): Criterion {
  return { type: "file_exists", path };
}

/** Requires a file to exist and be non-empty. */
export function fileNonEmpty(path: string): Criterion {
  return { type: "file_non_empty", path };
}

/** Every problem found in a pipeline, one message each, in report order. */
export class ValidationError extends Error {
  /** The messages. */
  readonly errors: readonly string[];

  /** Wraps the messages returned by `Pipeline.validate()`. */
  constructor(errors: readonly string[]) {
    super(errors.join("\n"));
    this.name = "ValidationError";
    this.errors = errors;
  }
}

/** @internal A registered resource. */
export type ResourceData =
  | { type: "directory"; path: string; globs: string[] }
  | { type: "cache"; name: string };

/** @internal A mount as emitted. */
export interface MountData {
  resource: string;
  path: string;
  type: "directory" | "cache";
}

/** @internal State shared by a pipeline and the builders it hands out. */
export interface State {
  readonly tasks: TaskData[];
  readonly resources: Map<string, ResourceData>;
  /** Problems found while building (e.g. `chain` naming an unknown task). */
  readonly errors: string[];
}

const CWD_ID = "src:.";

function ensureCwd(state: State): void {
  if (!state.resources.has(CWD_ID)) {
    state.resources.set(CWD_ID, { type: "directory", path: ".", globs: [] });
  }
}

function cwdMount(): MountData {
  return { resource: CWD_ID, path: "/work", type: "directory" };
}

/** Whole seconds, rounded up, at least 1; NaN when `s` is not a finite number. */
function toSeconds(s: number): number {
  return Number.isFinite(s) ? Math.max(1, Math.ceil(s)) : Number.NaN;
}

function addDeps(data: TaskData, names: readonly string[]): void {
  for (const n of names) {
    if (!data.dependsOn.includes(n)) {
      data.dependsOn.push(n);
    }
  }
}

function lookup(state: State, name: string): TaskData | undefined {
  return state.tasks.find((t) => t.name === name);
}

/**
 * A pipeline: create one, add tasks, and call `emit()` at the end of `sykli.ts`.
 *
 * ```ts
 * const p = new Pipeline();
 * p.task("lint").run("npm run lint");
 * p.task("test").run("npm test").after("lint");
 * p.emit();
 * ```
 */
export class Pipeline {
  readonly #state: State = { tasks: [], resources: new Map(), errors: [] };

  /** Adds a new task. Tasks appear in the graph in creation order. */
  task(name: string): Task {
    const data = newTask(name);
    this.#state.tasks.push(data);
    return new Task(this.#state, data);
  }

  /** Adds an approval gate: no command, strategy "prompt", a one-hour timeout. */
  gate(name: string): Gate {
    const data = newTask(name);
    data.gate = { strategy: "prompt", timeout: 3600 };
    this.#state.tasks.push(data);
    return new Gate(this.#state, data);
  }

  /** Registers a project directory as the resource `"src:" + path`. */
  dir(path: string): Directory {
    const id = `src:${path}`;
    this.#state.resources.set(id, { type: "directory", path, globs: [] });
    return new Directory(this.#state, id);
  }

  /** Registers a named cache volume as the resource `name`. */
  cache(name: string): CacheVolume {
    this.#state.resources.set(name, { type: "cache", name });
    return new CacheVolume(name);
  }

  /** An empty set of reusable task settings, applied with `task.from(template)`. */
  template(): Template {
    return new Template();
  }

  /** Makes each named task depend on the one before it; every name must already be a task. */
  chain(...names: string[]): this {
    let prev: TaskData | undefined;
    for (const n of names) {
      const t = lookup(this.#state, n);
      if (t === undefined) {
        this.#state.errors.push(`chain refers to unknown task ${quote(n)}`);
        prev = undefined;
        continue;
      }
      if (prev !== undefined) {
        addDeps(t, [prev.name]);
      }
      prev = t;
    }
    return this;
  }

  /**
   * Names a set of tasks for `task.afterGroup(group)`; adds no edges itself. A member
   * that is not a task is reported as an unknown dependency of the tasks using the group.
   */
  parallel(...names: string[]): Group {
    return new Group([...names]);
  }

  /** Every problem in the pipeline, in report order; empty when it is valid. */
  validate(): string[] {
    return validate(this.#state.tasks, this.#state.resources, this.#state.errors);
  }

  /**
   * The canonical JSON: two-space indent, fields in the runtime's order, maps sorted
   * by key, a trailing newline. Throws a {@link ValidationError} if the pipeline is invalid.
   */
  toJSON(): string {
    const errors = this.validate();
    if (errors.length > 0) {
      throw new ValidationError(errors);
    }
    return this.#render();
  }

  /**
   * The end of every `sykli.ts`. With `--emit` among the arguments it validates the
   * pipeline, prints its JSON on stdout and exits 0. If the pipeline is invalid it
   * prints every error to stderr, one per line prefixed `error: `, and exits 1.
   * Without `--emit` it validates, prints a hint to stderr and exits 0.
   */
  emit(): never {
    const args = globalThis.process?.argv.slice(2) ?? [];
    const errors = this.validate();
    if (errors.length > 0) {
      writeAll(2, errors.map((e) => `error: ${e}\n`).join(""));
      process.exit(1);
    }
    if (!args.includes("--emit")) {
      writeAll(
        2,
        `sykli: pipeline is valid (${this.#state.tasks.length} tasks); run it with \`sykli\`, or pass --emit to print the graph\n`,
      );
      process.exit(0);
    }
    writeAll(1, this.#render());
    process.exit(0);
  }

  #render(): string {
    const { tasks, resources } = this.#state;
    let version = resources.size > 0 ? 2 : 1;
    for (const t of tasks) {
      if (t.taskType !== undefined || t.criteria.length > 0) {
        version = Math.max(version, 3);
      } else if (t.container !== undefined || t.mounts.length > 0) {
        version = Math.max(version, 2);
      }
    }
    const doc: JsonObject = new Map<string, Json>([
      ["version", String(version)],
      ["tasks", tasks.map(taskJson)],
    ]);
    if (resources.size > 0) {
      doc.set(
        "resources",
        sortedMap([...resources].map(([id, r]): [string, Json] => [id, resourceJson(r)])),
      );
    }
    return render(doc);
  }
}

function quote(s: string): string {
  return `"${s}"`;
}

/** Writes all of `text` to a file descriptor synchronously, so `process.exit` loses nothing. */
function writeAll(fd: number, text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as { code?: unknown }).code !== "EAGAIN") {
        throw e;
      }
    }
  }
}

function newTask(name: string): TaskData {
  return {
    name,
    dependsOn: [],
    env: new Map(),
    inputs: [],
    outputs: new Map(),
    taskInputs: [],
    mounts: [],
    services: [],
    matrix: new Map(),
    secrets: [],
    secretRefs: [],
    requires: [],
    provides: [],
    needs: [],
    criteria: [],
    remote: false,
  };
}

function resourceJson(r: ResourceData): JsonObject {
  if (r.type === "cache") {
    return new Map<string, Json>([
      ["type", "cache"],
      ["name", r.name],
    ]);
  }
  const o = new Map<string, Json>([
    ["type", "directory"],
    ["path", r.path],
  ]);
  if (r.globs.length > 0) {
    o.set("globs", r.globs);
  }
  return o;
}

/** The task's JSON object, keys in the order of the runtime's `Task` struct. */
function taskJson(t: TaskData): JsonObject {
  const o = new Map<string, Json>([["name", t.name]]);
  const str = (key: string, v: string | undefined): void => {
    if (v !== undefined && v !== "") {
      o.set(key, v);
    }
  };
  const list = (key: string, v: readonly Json[]): void => {
    if (v.length > 0) {
      o.set(key, v);
    }
  };
  const map = (key: string, v: Map<string, Json>): void => {
    if (v.size > 0) {
      o.set(key, sortedMap(v));
    }
  };
  const obj = (entries: [string, Json | undefined][]): JsonObject =>
    new Map(entries.filter((e): e is [string, Json] => e[1] !== undefined && e[1] !== ""));

  str("command", t.command);
  list("depends_on", t.dependsOn);
  map("env", t.env);
  str("workdir", t.workdir);
  list("inputs", t.inputs);
  map("outputs", t.outputs);
  list(
    "task_inputs",
    t.taskInputs.map((i) =>
      obj([
        ["from_task", i.fromTask],
        ["output", i.output],
        ["dest", i.dest],
      ]),
    ),
  );
  str("container", t.container);
  list(
    "mounts",
    t.mounts.map((m) =>
      obj([
        ["resource", m.resource],
        ["path", m.path],
        ["type", m.type],
      ]),
    ),
  );
  list(
    "services",
    t.services.map((s) =>
      obj([
        ["image", s.image],
        ["name", s.name],
      ]),
    ),
  );
  map("matrix", t.matrix);
  list("secrets", t.secrets);
  list(
    "secret_refs",
    t.secretRefs.map((s) =>
      obj([
        ["name", s.name],
        ["source", s.source],
        ["key", s.key],
      ]),
    ),
  );
  str("when", t.when);
  if (t.retry !== undefined) {
    o.set("retry", t.retry);
  }
  if (t.timeout !== undefined) {
    o.set("timeout", t.timeout);
  }
  list("requires", t.requires);
  list(
    "provides",
    t.provides.map((p) =>
      obj([
        ["name", p.name],
        ["value", p.value],
      ]),
    ),
  );
  list("needs", t.needs);
  if (t.gate !== undefined) {
    const g = t.gate;
    o.set(
      "gate",
      obj([
        ["strategy", g.strategy],
        ["timeout", g.timeout],
        ["message", g.message],
        ["env_var", g.envVar],
        ["file_path", g.filePath],
      ]),
    );
  }
  list(
    "success_criteria",
    t.criteria.map((c) =>
      c.type === "exit_code"
        ? obj([
            ["type", c.type],
            ["equals", c.equals],
          ])
        : obj([
            ["type", c.type],
            ["path", c.path],
          ]),
    ),
  );
  str("task_type", t.taskType);
  if (t.remote) {
    o.set("remote", true);
  }
  str("prefer", t.prefer);
  if (t.cache !== undefined) {
    o.set("cache", t.cache);
  }
  str("target", t.target);
  if (t.background !== undefined) {
    o.set(
      "background",
      new Map<string, Json>([
        ["ready", t.background.ready],
        ["ready_timeout", t.background.readyTimeout],
      ]),
    );
  }
  if (t.sandbox !== undefined) {
    const s = t.sandbox;
    const m = new Map<string, Json>();
    if (s.network) m.set("network", true);
    if (s.memoryMb !== undefined) m.set("memory_mb", s.memoryMb);
    if (s.cpus !== undefined) m.set("cpus", s.cpus);
    if (s.pids !== undefined) m.set("pids", s.pids);
    if (s.paths !== undefined && s.paths.length > 0) m.set("paths", [...s.paths]);
    o.set("sandbox", m.size === 0 ? true : m);
  }
  if (t.tests !== undefined) o.set("tests", t.tests);
  return o;
}

/** A registered project directory (resource `"src:" + path`). */
export class Directory {
  readonly #state: State;
  /** The resource id, `"src:" + path`. */
  readonly id: string;

  /** Made by `pipeline.dir(path)`. */
  constructor(state: State, id: string) {
    this.#state = state;
    this.id = id;
  }

  /** Restricts the directory to files matching `globs`. */
  globs(...globs: string[]): this {
    const r = this.#state.resources.get(this.id);
    if (r !== undefined && r.type === "directory") {
      r.globs = [...globs];
    }
    return this;
  }
}

/** A registered named cache volume; its name is its resource id. */
export class CacheVolume {
  /** The cache's name. */
  readonly name: string;

  /** Made by `pipeline.cache(name)`. */
  constructor(name: string) {
    this.name = name;
  }
}

/** A named set of tasks made by `pipeline.parallel(...)`. */
export class Group {
  /** The member task names. */
  readonly names: readonly string[];

  /** Made by `pipeline.parallel(...)`. */
  constructor(names: readonly string[]) {
    this.names = names;
  }
}

/** A node of the graph. Every method returns the task for chaining. */
export class Task {
  readonly #state: State;
  readonly #data: TaskData;

  /** Made by `pipeline.task(name)`. */
  constructor(state: State, data: TaskData) {
    this.#state = state;
    this.#data = data;
  }

  /** The task's name. */
  get name(): string {
    return this.#data.name;
  }

  /** Sets the shell command. */
  run(command: string): this {
    this.#data.command = command;
    return this;
  }

  /** Depends on the named tasks; first-seen order, repeats dropped. */
  after(...names: string[]): this {
    addDeps(this.#data, names);
    return this;
  }

  /** Depends on every member of `group`. */
  afterGroup(group: Group): this {
    addDeps(this.#data, group.names);
    return this;
  }

  /** Runs the command in the given image. */
  container(image: string): this {
    this.#data.container = image;
    return this;
  }

  /** Sets the working directory. */
  workdir(dir: string): this {
    this.#data.workdir = dir;
    return this;
  }

  /** Sets an environment variable. */
  env(key: string, value: string): this {
    this.#data.env.set(key, value);
    return this;
  }

  /** Adds globs whose files form the cache key. */
  inputs(...globs: string[]): this {
    this.#data.inputs.push(...globs);
    return this;
  }

  /** Declares a named output path. */
  output(name: string, path: string): this {
    this.#data.outputs.set(name, path);
    return this;
  }

  /** Declares outputs named `output_<i>`, i counting on from the outputs already declared. */
  outputs(...paths: string[]): this {
    for (const p of paths) {
      this.#data.outputs.set(`output_${this.#data.outputs.size}`, p);
    }
    return this;
  }

  /** Copies output `output` of task `from` into `dest`, and depends on `from`. */
  inputFrom(from: string, output: string, dest: string): this {
    this.#data.taskInputs.push({ fromTask: from, output, dest });
    addDeps(this.#data, [from]);
    return this;
  }

  /** Mounts a registered directory at `path` in the container. */
  mount(dir: Directory, path: string): this {
    this.#data.mounts.push({ resource: dir.id, path, type: "directory" });
    return this;
  }

  /** Mounts a registered cache volume at `path` in the container. */
  mountCache(cache: CacheVolume, path: string): this {
    this.#data.mounts.push({ resource: cache.name, path, type: "cache" });
    return this;
  }

  /** Mounts the project root at `/work` and makes `/work` the working directory. */
  mountCwd(): this {
    ensureCwd(this.#state);
    this.#data.mounts.push(cwdMount());
    this.#data.workdir = "/work";
    return this;
  }

  /** Runs only when the expression holds; emitted verbatim. */
  when(expr: string): this {
    this.#data.when = expr;
    return this;
  }

  /** Runs only when `cond` holds. */
  whenCond(cond: Condition): this {
    this.#data.when = cond.toString();
    return this;
  }

  /** Adds a secret read from the environment variable of the same name. */
  secret(name: string): this {
    this.#data.secrets.push(name);
    return this;
  }

  /** Adds several secrets. */
  secrets(...names: string[]): this {
    this.#data.secrets.push(...names);
    return this;
  }

  /** Adds a secret named `name` whose value comes from `src`. */
  secretFrom(name: string, src: SecretSource): this {
    this.#data.secretRefs.push({ name, source: src.source, key: src.key });
    return this;
  }

  /** Sets one matrix dimension, replacing earlier values (no values is a validation error). */
  matrix(key: string, values: readonly string[]): this {
    this.#data.matrix.set(key, [...values]);
    return this;
  }

  /** Adds a sidecar container reachable by hostname `name`. */
  service(image: string, name: string): this {
    this.#data.services.push({ image, name });
    return this;
  }

  /** Extra attempts after a failure (emitted even when 0). */
  retry(n: number): this {
    this.#data.retry = n;
    return this;
  }

  /** Wall-clock limit in seconds, rounded up to a whole second (at least 1). */
  timeout(seconds: number): this {
    this.#data.timeout = toSeconds(seconds);
    return this;
  }

  /** Adds labels a worker must carry to run the task. */
  requires(...labels: string[]): this {
    this.#data.requires.push(...labels);
    return this;
  }

  /** Declares a capability this task provides. */
  provides(name: string): this {
    this.#data.provides.push({ name });
    return this;
  }

  /** Declares a capability with a value exported to consumers. */
  providesValue(name: string, value: string): this {
    this.#data.provides.push({ name, value });
    return this;
  }

  /** Declares a capability this task needs: a dependency on its provider. */
  needs(name: string): this {
    this.#data.needs.push(name);
    return this;
  }

  /** Adds a check applied after the command exits. */
  successCriteria(c: Criterion): this {
    this.#data.criteria.push(c);
    return this;
  }

  /** Labels the task (build, test, lint, ...). */
  taskType(kind: string): this {
    this.#data.taskType = kind;
    return this;
  }

  /** Names the target (built-in or plugin) that runs the task. */
  target(name: string): this {
    this.#data.target = name;
    return this;
  }

  /** Requires a remote executor. */
  remote(): this {
    this.#data.remote = true;
    return this;
  }

  /** A placement preference the scheduler may override. */
  prefer(where: Placement): this {
    this.#data.prefer = where;
    return this;
  }

  /** Disables caching, even with inputs. */
  noCache(): this {
    this.#data.cache = false;
    return this;
  }

  /**
   * Makes the task a run-scoped host service: its command keeps running in the background once
   * the `ready` shell check exits 0 (waiting at most `readyTimeoutSecs`), dependents start then,
   * and the command is stopped when the run ends. If `ready` already passes, the running
   * service is used and the command is not started.
   */
  background(ready: string, readyTimeoutSecs: number): this {
    this.#data.background = { ready, readyTimeout: readyTimeoutSecs };
    return this;
  }

  /**
   * Runs the task hermetically in the sandbox (Linux namespaces and cgroups): it sees its
   * declared inputs read-only, writes only its outputs and /tmp; `options` add the network,
   * limits and extra read-only host paths (see docs/sandbox.md).
   */
  sandbox(options: SandboxOptions = {}): this {
    this.#data.sandbox = { ...options };
    return this;
  }

  /**
   * Declares the test output format the command prints, so `sykli run --junit` and the
   * GitHub Actions summary list each test.
   */
  tests(format: TestFormat): this {
    this.#data.tests = format;
    return this;
  }

  /** Applies a template: scalar settings replace, env entries are set, lists are appended. */
  from(template: Template): this {
    const s = template.settings;
    const d = this.#data;
    if (s.mountsCwd) ensureCwd(this.#state);
    if (s.container !== undefined) d.container = s.container;
    if (s.workdir !== undefined) d.workdir = s.workdir;
    for (const [k, v] of s.env) d.env.set(k, v);
    d.inputs.push(...s.inputs);
    d.mounts.push(...s.mounts.map((m) => ({ ...m })));
    d.secrets.push(...s.secrets);
    if (s.retry !== undefined) d.retry = s.retry;
    if (s.timeout !== undefined) d.timeout = s.timeout;
    d.requires.push(...s.requires);
    if (s.target !== undefined) d.target = s.target;
    if (s.prefer !== undefined) d.prefer = s.prefer;
    return this;
  }
}

/** An approval gate made by `pipeline.gate(name)`. Every method returns the gate. */
export class Gate {
  readonly #data: TaskData;

  /** Made by `pipeline.gate(name)`. */
  constructor(_state: State, data: TaskData) {
    this.#data = data;
  }

  get #gate(): NonNullable<TaskData["gate"]> {
    this.#data.gate ??= { strategy: "prompt", timeout: 3600 };
    return this.#data.gate;
  }

  /** The gate's name. */
  get name(): string {
    return this.#data.name;
  }

  /** Depends on the named tasks. */
  after(...names: string[]): this {
    addDeps(this.#data, names);
    return this;
  }

  /** The message shown to the approver. */
  message(m: string): this {
    this.#gate.message = m;
    return this;
  }

  /** Approves when the environment variable `v` is set (strategy "env"). */
  envVar(v: string): this {
    this.#gate.strategy = "env";
    this.#gate.envVar = v;
    return this;
  }

  /** Approves when the file at `path` exists (strategy "file"). */
  file(path: string): this {
    this.#gate.strategy = "file";
    this.#gate.filePath = path;
    return this;
  }

  /** Asks a person on the terminal (strategy "prompt", the default). */
  prompt(): this {
    this.#gate.strategy = "prompt";
    return this;
  }

  /** How long the gate waits, in seconds rounded up (at least 1). */
  timeout(seconds: number): this {
    this.#gate.timeout = toSeconds(seconds);
    return this;
  }
}

/** The settings a {@link Template} carries. */
export interface TemplateSettings {
  mountsCwd: boolean;
  container?: string;
  workdir?: string;
  env: Map<string, string>;
  inputs: string[];
  mounts: MountData[];
  secrets: string[];
  retry?: number;
  timeout?: number;
  requires: string[];
  target?: string;
  prefer?: Placement;
}

/** Reusable task settings, applied with `task.from(template)`. Every method returns the template. */
export class Template {
  /** The collected settings (read by `task.from`). */
  readonly settings: TemplateSettings = {
    mountsCwd: false,
    env: new Map(),
    inputs: [],
    mounts: [],
    secrets: [],
    requires: [],
  };


  /** Sets the image. */
  container(image: string): this {
    this.settings.container = image;
    return this;
  }

  /** Sets the working directory. */
  workdir(dir: string): this {
    this.settings.workdir = dir;
    return this;
  }

  /** Sets an environment variable. */
  env(key: string, value: string): this {
    this.settings.env.set(key, value);
    return this;
  }

  /** Adds cache-key globs. */
  inputs(...globs: string[]): this {
    this.settings.inputs.push(...globs);
    return this;
  }

  /** Mounts a registered directory at `path`. */
  mount(dir: Directory, path: string): this {
    this.settings.mounts.push({ resource: dir.id, path, type: "directory" });
    return this;
  }

  /** Mounts a registered cache volume at `path`. */
  mountCache(cache: CacheVolume, path: string): this {
    this.settings.mounts.push({ resource: cache.name, path, type: "cache" });
    return this;
  }

  /** Mounts the project root at `/work` and makes it the working directory (`src:.` is registered when applied). */
  mountCwd(): this {
    this.settings.mountsCwd = true;
    this.settings.mounts.push(cwdMount());
    this.settings.workdir = "/work";
    return this;
  }

  /** Adds a secret. */
  secret(name: string): this {
    this.settings.secrets.push(name);
    return this;
  }

  /** Adds several secrets. */
  secrets(...names: string[]): this {
    this.settings.secrets.push(...names);
    return this;
  }

  /** Sets the number of extra attempts. */
  retry(n: number): this {
    this.settings.retry = n;
    return this;
  }

  /** Sets the wall-clock limit in seconds, rounded up (at least 1). */
  timeout(seconds: number): this {
    this.settings.timeout = toSeconds(seconds);
    return this;
  }

  /** Adds worker labels. */
  requires(...labels: string[]): this {
    this.settings.requires.push(...labels);
    return this;
  }

  /** Names the target that runs the tasks. */
  target(name: string): this {
    this.settings.target = name;
    return this;
  }

  /** Sets a placement preference. */
  prefer(where: Placement): this {
    this.settings.prefer = where;
    return this;
  }
}

/** Pipeline validation: the same checks, order and messages as the Go and Rust SDKs. */

import { jaroWinkler } from "./jaro.ts";
import type { Criterion, MountData, Placement, TestFormat } from "./pipeline.ts";

/** @internal A task as the builder records it. */
/** Settings of a sandboxed task (see docs/sandbox.md). */
export interface SandboxOptions {
  /** Keep the host's network (default: none). */
  network?: boolean;
  /** Memory limit in MiB. */
  memoryMb?: number;
  /** CPU limit as a number of CPUs. */
  cpus?: number;
  /** Limit on processes and threads. */
  pids?: number;
  /** Extra read-only host paths (absolute). */
  paths?: string[];
}

export interface TaskData {
  name: string;
  command?: string;
  dependsOn: string[];
  env: Map<string, string>;
  workdir?: string;
  inputs: string[];
  outputs: Map<string, string>;
  taskInputs: { fromTask: string; output: string; dest: string }[];
  container?: string;
  mounts: MountData[];
  services: { image: string; name: string }[];
  matrix: Map<string, string[]>;
  secrets: string[];
  secretRefs: { name: string; source: "env" | "file" | "vault"; key: string }[];
  when?: string;
  retry?: number;
  timeout?: number;
  requires: string[];
  provides: { name: string; value?: string }[];
  needs: string[];
  gate?: {
    strategy: "prompt" | "env" | "file";
    timeout?: number;
    message?: string;
    envVar?: string;
    filePath?: string;
  };
  criteria: Criterion[];
  taskType?: string;
  remote: boolean;
  prefer?: Placement;
  cache?: boolean;
  target?: string;
  background?: { ready: string; readyTimeout: number };
  sandbox?: SandboxOptions;
  tests?: TestFormat;
}


/** Wraps `s` in double quotes, as the runtime's messages do (no escaping). */
const q = (s: string): string => `"${s}"`;

/** @internal A directory resource's path, for the project-escape check. */
export interface ResourceInfo {
  type: "directory" | "cache";
  path?: string;
}

/**
 * Every problem, with the same messages in the same order as the sykli runtime's
 * validator (which the Rust SDK uses): problems found while building, empty and
 * duplicate names, capabilities with several providers, directories outside the
 * project, each task's own problems in definition order, then dependency cycles
 * (only when every name is valid). Conditions are checked by the runtime.
 */
export function validate(
  tasks: readonly TaskData[],
  resources: ReadonlyMap<string, ResourceInfo>,
  buildErrors: readonly string[],
): string[] {
  const errors = [...buildErrors];

  // Names.
  const index = new Map<string, number>();
  const reportedDup = new Set<string>();
  let nameErrors = false;
  tasks.forEach((t, i) => {
    if (t.name === "") {
      errors.push("task name must not be empty");
      nameErrors = true;
    } else if (index.has(t.name)) {
      if (!reportedDup.has(t.name)) {
        errors.push(`duplicate task name ${q(t.name)}`);
        reportedDup.add(t.name);
      }
      nameErrors = true;
    } else {
      index.set(t.name, i);
    }
  });

  // Capabilities, in order of first mention.
  const providers = new Map<string, number[]>();
  tasks.forEach((t, i) => {
    for (const p of t.provides) {
      const list = providers.get(p.name) ?? [];
      if (!list.includes(i)) list.push(i);
      providers.set(p.name, list);
    }
  });
  for (const [cap, list] of providers) {
    if (list.length > 1) {
      const names = list.map((i) => q(tasks[i]?.name ?? "")).join(", ");
      errors.push(`capability ${q(cap)} is provided by more than one task: ${names}`);
    }
  }

  // Resources, by id.
  for (const id of [...resources.keys()].sort(compareCodeUnitsAsBytes)) {
    const r = resources.get(id);
    if (r?.type === "directory" && escapes(r.path ?? "")) {
      errors.push(`resource ${q(id)} refers to directory ${q(r.path ?? "")}, which is outside the project`);
    }
  }

  // Per task.
  const edges: number[][] = [];
  tasks.forEach((t, i) => {
    checkTask(t, resources, errors);
    edges.push(resolveDeps(tasks, i, t, index, providers, errors));
  });

  if (!nameErrors) {
    for (const cycle of findCycles(edges)) {
      errors.push(`dependency cycle detected: ${cycle.map((i) => tasks[i]?.name ?? "").join(" -> ")}`);
    }
  }
  return errors;
}

function compareCodeUnitsAsBytes(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
    const d = (ea[i] ?? 0) - (eb[i] ?? 0);
    if (d !== 0) return d;
  }
  return ea.length - eb.length;
}

function checkTask(t: TaskData, resources: ReadonlyMap<string, ResourceInfo>, errors: string[]): void {
  const at = `task ${q(t.name)}`;
  const add = (msg: string): void => {
    errors.push(`${at} ${msg}`);
  };
  if (t.gate === undefined && (t.command ?? "").trim() === "") {
    add("has no command");
  }
  if (t.env.has("")) {
    add("has an empty env key");
  }
  if (t.retry !== undefined) {
    if (!Number.isInteger(t.retry)) {
      add("has a non-integer retry count");
    } else if (t.retry < 0) {
      add("has a negative retry count");
    }
  }
  if (t.timeout !== undefined && Number.isNaN(t.timeout)) {
    add("has a timeout that is not a finite number of seconds");
  }
  for (const m of t.mounts) {
    if (!m.path.startsWith("/")) {
      add(`mounts ${q(m.resource)} at ${q(m.path)}, which is not an absolute path`);
    }
    const r = resources.get(m.resource);
    if (r !== undefined && r.type !== m.type) {
      add(`mounts resource ${q(m.resource)} as ${m.type}, but it is a ${r.type}`);
    }
  }
  let exitCodes = 0;
  for (const c of t.criteria) {
    if (c.type === "exit_code") {
      exitCodes++;
      if (!Number.isInteger(c.equals)) {
        add("has a non-integer exit code in its success criteria");
      }
    } else if (c.path === "" || escapes(c.path)) {
      add(`has success criterion path ${q(c.path)} outside its workdir`);
    }
  }
  if (exitCodes > 1) {
    add("has more than one exit_code success criterion");
  }
  for (const s of t.services) {
    if (s.image === "") add("has a service with an empty image");
    if (s.name === "") add("has a service with an empty name");
  }
  const g = t.gate;
  if (g !== undefined) {
    if (g.strategy === "env" && (g.envVar ?? "") === "") {
      errors.push(`gate ${q(t.name)} uses strategy env but has no \`env_var\``);
    } else if (g.strategy === "file" && (g.filePath ?? "") === "") {
      errors.push(`gate ${q(t.name)} uses strategy file but has no \`file_path\``);
    }
    if (g.timeout !== undefined && Number.isNaN(g.timeout)) {
      add("has a gate timeout that is not a finite number of seconds");
    }
  }
  for (const key of [...t.matrix.keys()].sort(compareCodeUnitsAsBytes)) {
    const values = t.matrix.get(key) ?? [];
    if (key === "") add(`has matrix dimension ${q(key)} with an empty name`);
    if (values.length === 0) add(`has matrix dimension ${q(key)} with no values`);
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v)) add(`has matrix dimension ${q(key)} with duplicate value ${q(v)}`);
      seen.add(v);
    }
  }
}

/** A task's dependencies as indices: depends_on, task_inputs sources, providers of needs. */
function resolveDeps(
  tasks: readonly TaskData[],
  i: number,
  t: TaskData,
  index: ReadonlyMap<string, number>,
  providers: ReadonlyMap<string, number[]>,
  errors: string[],
): number[] {
  const deps: number[] = [];
  let selfReported = false;
  const unknownReported = new Set<string>();
  const add = (d: string): void => {
    if (d === t.name) {
      if (!selfReported) {
        errors.push(`task ${q(t.name)} depends on itself`);
        selfReported = true;
      }
      return;
    }
    const j = index.get(d);
    if (j === undefined) {
      if (!unknownReported.has(d)) {
        const s = suggest(d, tasks);
        errors.push(
          `task ${q(t.name)} depends on unknown task ${q(d)}` + (s === undefined ? "" : ` (did you mean ${q(s)}?)`),
        );
        unknownReported.add(d);
      }
      return;
    }
    if (!deps.includes(j)) deps.push(j);
  };
  for (const d of t.dependsOn) add(d);
  for (const input of t.taskInputs) {
    add(input.fromTask);
    const j = index.get(input.fromTask);
    if (j !== undefined && j !== i && tasks[j]?.outputs.has(input.output) !== true) {
      errors.push(
        `task ${q(t.name)} takes output ${q(input.output)} from task ${q(input.fromTask)}, which declares no such output`,
      );
    }
  }
  for (const need of t.needs) {
    const list = providers.get(need);
    if (list === undefined) {
      errors.push(`task ${q(t.name)} needs ${q(need)}, but no task provides it`);
      continue;
    }
    for (const j of list) {
      if (j !== i && !deps.includes(j)) deps.push(j);
    }
  }
  return deps;
}

/** The task name closest to `unknown` (Jaro-Winkler >= 0.8; ties: defined first). */
export function suggest(unknown: string, tasks: readonly TaskData[]): string | undefined {
  let best: string | undefined;
  let bestScore = 0;
  for (const t of tasks) {
    const s = jaroWinkler(unknown, t.name);
    if (s >= 0.8 && (best === undefined || s > bestScore)) {
      best = t.name;
      bestScore = s;
    }
  }
  return best;
}

/**
 * One cycle per strongly connected component of more than one task, components in
 * order of their first task, each path starting there and following the shortest
 * way back (breadth-first, edges in order).
 */
function findCycles(edges: readonly number[][]): number[][] {
  const n = edges.length;
  const reach = (from: number): boolean[] => {
    const seen = new Array<boolean>(n).fill(false);
    const stack = [from];
    seen[from] = true;
    for (let u = stack.pop(); u !== undefined; u = stack.pop()) {
      for (const v of edges[u] ?? []) {
        if (!seen[v]) {
          seen[v] = true;
          stack.push(v);
        }
      }
    }
    return seen;
  };
  const reachable = edges.map((_, i) => reach(i));
  const assigned = new Array<boolean>(n).fill(false);
  const cycles: number[][] = [];
  for (let start = 0; start < n; start++) {
    if (assigned[start]) continue;
    const inScc = new Array<boolean>(n).fill(false);
    let size = 0;
    for (let v = 0; v < n; v++) {
      if (reachable[start]?.[v] === true && reachable[v]?.[start] === true) {
        inScc[v] = true;
        assigned[v] = true;
        size++;
      }
    }
    if (size < 2) continue;
    const prev = new Map<number, number>();
    const queue = [start];
    let last: number | undefined;
    bfs: for (let u = queue.shift(); u !== undefined; u = queue.shift()) {
      for (const v of edges[u] ?? []) {
        if (v === start) {
          last = u;
          break bfs;
        }
        if (inScc[v] === true && !prev.has(v)) {
          prev.set(v, u);
          queue.push(v);
        }
      }
    }
    if (last === undefined) continue;
    const chain: number[] = [];
    for (let u: number | undefined = last; u !== undefined && u !== start; u = prev.get(u)) {
      chain.push(u);
    }
    cycles.push([start, ...chain.reverse(), start]);
  }
  return cycles;
}

/** Whether a relative path leaves its base: absolute, or `..` below the start. */
export function escapes(path: string): boolean {
  if (path.startsWith("/")) return true;
  let depth = 0;
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      depth--;
      if (depth < 0) return true;
    } else {
      depth++;
    }
  }
  return false;
}

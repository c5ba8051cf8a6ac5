/** Pipeline validation: the same checks, order and messages as the Go and Rust SDKs. */

import { jaroWinkler } from "./jaro.ts";
import type { Criterion, MountData, Placement } from "./pipeline.ts";

/** @internal A task as the builder records it. */
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
  secretRefs: { name: string; source: "env" | "file"; key: string }[];
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
}


const q = (s: string): string => JSON.stringify(s);

/**
 * Every problem in report order: problems found while building, then for each task
 * in definition order its name, command, env, number and dependency problems, then
 * at most one dependency cycle.
 */
export function validate(tasks: readonly TaskData[], buildErrors: readonly string[]): string[] {
  const errors = [...buildErrors];
  const first = new Map<string, TaskData>();
  for (const t of tasks) {
    if (t.name !== "" && !first.has(t.name)) {
      first.set(t.name, t);
    }
  }
  const names = [...first.keys()];

  for (const t of tasks) {
    if (t.name === "") {
      errors.push("task name must not be empty");
      continue;
    }
    if (first.get(t.name) !== t) {
      errors.push(`duplicate task name ${q(t.name)}`);
      continue;
    }
    const at = `task ${q(t.name)}`;
    if (t.gate === undefined && (t.command === undefined || t.command === "")) {
      errors.push(`${at} has no command`);
    }
    if (t.env.has("")) {
      errors.push(`${at} has an empty env key`);
    }
    if (t.retry !== undefined) {
      if (!Number.isInteger(t.retry)) {
        errors.push(`${at} has a non-integer retry count`);
      } else if (t.retry < 0) {
        errors.push(`${at} has a negative retry count`);
      }
    }
    if (t.timeout !== undefined && Number.isNaN(t.timeout)) {
      errors.push(`${at} has a timeout that is not a finite number of seconds`);
    }
    if (t.gate?.timeout !== undefined && Number.isNaN(t.gate.timeout)) {
      errors.push(`${at} has a gate timeout that is not a finite number of seconds`);
    }
    for (const c of t.criteria) {
      if (c.type === "exit_code" && !Number.isInteger(c.equals)) {
        errors.push(`${at} has a non-integer exit code in its success criteria`);
      }
    }
    for (const d of t.dependsOn) {
      if (d === t.name) {
        errors.push(`${at} depends on itself`);
      } else if (!first.has(d)) {
        const s = suggest(d, names, t.name);
        errors.push(
          `${at} depends on unknown task ${q(d)}` + (s === undefined ? "" : ` (did you mean ${q(s)}?)`),
        );
      }
    }
  }

  const cycle = findCycle(names, first);
  if (cycle !== undefined) {
    errors.push(`dependency cycle detected: ${cycle.join(" -> ")}`);
  }
  return errors;
}

/** The known name closest to `unknown` (Jaro-Winkler >= 0.8; ties: defined first; never `self`). */
export function suggest(unknown: string, names: readonly string[], self: string): string | undefined {
  let best: string | undefined;
  let bestScore = 0;
  for (const n of names) {
    if (n === self) {
      continue;
    }
    const s = jaroWinkler(unknown, n);
    if (s >= 0.8 && s > bestScore) {
      best = n;
      bestScore = s;
    }
  }
  return best;
}

/**
 * A dependency cycle as a path starting and ending at the first task, in definition
 * order, that lies on one; edges follow `depends_on` in the order written.
 */
function findCycle(names: readonly string[], byName: ReadonlyMap<string, TaskData>): string[] | undefined {
  const deps = (n: string): string[] =>
    (byName.get(n)?.dependsOn ?? []).filter((d) => d !== n && byName.has(d));
  for (const start of names) {
    const visited = new Set([start]);
    const walk = (n: string, path: string[]): string[] | undefined => {
      for (const d of deps(n)) {
        if (d === start) {
          return [...path, start];
        }
        if (!visited.has(d)) {
          visited.add(d);
          const found = walk(d, [...path, d]);
          if (found !== undefined) {
            return found;
          }
        }
      }
      return undefined;
    };
    const found = walk(start, [start]);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

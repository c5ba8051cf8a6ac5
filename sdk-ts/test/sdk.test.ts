/** Unit tests of the compiled SDK (dist/src), table-driven where it fits. */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { jaroWinkler } from "../src/jaro.ts";
import { compareKeys, render, type Json } from "../src/json.ts";
import {
  Pipeline,
  ValidationError,
  branch,
  event,
  exitCode,
  fileExists,
  fromVault,
  hasTag,
  inCI,
  not,
  tag,
} from "../src/index.ts";

describe("conditions", () => {
  const cases: [string, string][] = [
    [branch("main").toString(), "branch == 'main'"],
    [branch("feature/*").toString(), "branch matches 'feature/*'"],
    [tag("v1").toString(), "tag == 'v1'"],
    [tag("v*").toString(), "tag matches 'v*'"],
    [tag("").toString(), "tag != ''"],
    [hasTag().toString(), "tag != ''"],
    [event("push").toString(), "event == 'push'"],
    [inCI().toString(), "ci == true"],
    [branch("a").and(tag("b")).toString(), "(branch == 'a') && (tag == 'b')"],
    [event("push").or(inCI()).toString(), "(event == 'push') || (ci == true)"],
    [not(inCI()).toString(), "!(ci == true)"],
    [inCI().not().toString(), "!(ci == true)"],
    [
      not(branch("a").or(branch("b"))).and(hasTag()).toString(),
      "(!((branch == 'a') || (branch == 'b'))) && (tag != '')",
    ],
  ];
  for (const [got, want] of cases) {
    test(want, () => assert.equal(got, want));
  }
});

describe("jaroWinkler matches strsim 0.11", () => {
  const cases: [string, string, number][] = [
    ["", "", 1],
    ["a", "", 0],
    ["same", "same", 1],
    ["cheeseburger", "cheese fries", 0.8666666666666666],
    ["dixon", "dicksonx", 0.8133333333333332],
    ["biuld", "build", 0.94],
    ["abc", "xyz", 0],
    ["Friedrich Nietzsche", "Jean-Paul Sartre", 0.39188596491228067],
    ["日本語", "日本", 0.9111111111111111],
    ["😀a", "😀b", 0.6666666666666666],
  ];
  for (const [a, b, want] of cases) {
    test(`${a} / ${b}`, () => assert.ok(Math.abs(jaroWinkler(a, b) - want) < 1e-12, String(jaroWinkler(a, b))));
  }
});

test("jaroWinkler reproduces the shared strsim table exactly", () => {
  const table = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "tests", "vectors", "jaro-winkler.tsv");
  const lines = readFileSync(table, "utf8").replace(/\n$/, "").split("\n");
  assert.ok(lines.length >= 20);
  for (const line of lines) {
    const [a, b, score] = line.split("\t");
    assert.ok(a !== undefined && b !== undefined && score !== undefined, line);
    assert.equal(jaroWinkler(a, b), Number(score), `${a} / ${b}`);
  }
});

describe("json", () => {
  test("sorts keys by code point, as UTF-8 bytes sort", () => {
    const keys = ["b", "😀", "ｚ", "10", "9", "B", "é", "a"];
    assert.deepEqual([...keys].sort(compareKeys), ["10", "9", "B", "a", "b", "é", "ｚ", "😀"]);
  });
  test("keeps integer-like keys in insertion order", () => {
    assert.equal(render(new Map([["b", 1], ["10", 2], ["2", 3]])), '{\n  "b": 1,\n  "10": 2,\n  "2": 3\n}\n');
  });
  test("writes empty containers and nesting like serde_json", () => {
    assert.equal(render(new Map<string, Json>([["a", []], ["b", new Map()], ["c", [[1]]]])), '{\n  "a": [],\n  "b": {},\n  "c": [\n    [\n      1\n    ]\n  ]\n}\n');
  });
  test("rejects numbers JSON cannot hold", () => {
    assert.throws(() => render(Number.NaN), RangeError);
  });
});

describe("pipeline", () => {
  test("toJSON throws a ValidationError listing every problem", () => {
    const p = new Pipeline();
    p.task("a");
    p.task("b").run("x").after("c");
    assert.throws(
      () => p.toJSON(),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.errors.join("|") === 'task "a" has no command|task "b" depends on unknown task "c"',
    );
  });

  test("versions", () => {
    const version = (build: (p: Pipeline) => void): string => {
      const p = new Pipeline();
      build(p);
      return (JSON.parse(p.toJSON()) as { version: string }).version;
    };
    assert.equal(version((p) => p.task("a").run("x")), "1");
    assert.equal(version((p) => p.task("a").run("x").container("i")), "2");
    assert.equal(version((p) => { p.dir("d"); p.task("a").run("x"); }), "2");
    assert.equal(version((p) => p.task("a").run("x").successCriteria(exitCode(0)).container("i")), "3");
    assert.equal(version((p) => { p.task("a").run("x").taskType("t"); p.task("b").run("x").mountCwd(); }), "3");
  });

  test("an unused template registers nothing", () => {
    const p = new Pipeline();
    p.template().mountCwd();
    p.task("a").run("x");
    assert.equal(p.toJSON(), '{\n  "version": "1",\n  "tasks": [\n    {\n      "name": "a",\n      "command": "x"\n    }\n  ]\n}\n');
  });

  test("vault secrets", () => {
    const p = new Pipeline();
    p.task("a").run("x").secretFrom("T", fromVault("secret/data/t"));
    assert.match(p.toJSON(), /"source": "vault",\n\s+"key": "secret\/data\/t"/);
  });

  const invalid: [string, (p: Pipeline) => void, string[]][] = [
    ["non-integer retry", (p) => void p.task("a").run("x").retry(1.5), ['task "a" has a non-integer retry count']],
    ["negative retry", (p) => void p.task("a").run("x").retry(-1), ['task "a" has a negative retry count']],
    [
      "infinite timeout",
      (p) => void p.task("a").run("x").timeout(Number.POSITIVE_INFINITY),
      ['task "a" has a timeout that is not a finite number of seconds'],
    ],
    [
      "NaN gate timeout",
      (p) => void p.gate("g").timeout(Number.NaN),
      ['task "g" has a gate timeout that is not a finite number of seconds'],
    ],
    [
      "non-integer exit code",
      (p) => void p.task("a").run("x").successCriteria(exitCode(0.5)),
      ['task "a" has a non-integer exit code in its success criteria'],
    ],
    [
      "criterion escaping the workdir",
      (p) => void p.task("a").run("x").successCriteria(fileExists("/etc/passwd")),
      ['task "a" has success criterion path "/etc/passwd" outside its workdir'],
    ],
    ["blank command", (p) => void p.task("a").run("  "), ['task "a" has no command']],
  ];
  for (const [name, build, want] of invalid) {
    test(name, () => {
      const p = new Pipeline();
      build(p);
      assert.deepEqual(p.validate(), want);
    });
  }

  test("timeouts round up to whole seconds, at least 1", () => {
    const cases: [number, number][] = [[0, 1], [-5, 1], [0.001, 1], [1, 1], [1.0001, 2], [299.5, 300]];
    for (const [given, want] of cases) {
      const p = new Pipeline();
      p.task("a").run("x").timeout(given);
      assert.equal((JSON.parse(p.toJSON()) as { tasks: { timeout: number }[] }).tasks[0]?.timeout, want);
    }
  });
});

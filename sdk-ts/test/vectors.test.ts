/**
 * Runs every shared test vector (../tests/vectors) with tsx: `sykli.ts --emit` must print
 * expected.json byte for byte; every error case must exit 1, print nothing on stdout and
 * exactly expected_error.txt on stderr. With Node >= 22.6 the vectors also run under
 * `node --experimental-strip-types`, proving the SDK sources are strippable.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const sdkRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const vectorsDir = resolve(sdkRoot, "..", "tests", "vectors");
const tsx = join(sdkRoot, "node_modules", ".bin", "tsx");

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[]): Promise<Outcome> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { encoding: "utf8", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== "number") {
        fail(err);
        return;
      }
      done({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

/** Runs `jobs` with at most `limit` at a time. */
async function pool<T>(jobs: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < jobs.length; i = next++) {
      const job = jobs[i];
      if (job !== undefined) results[i] = await job();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

function list(dir: string, marker: string): string[] {
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, marker)))
    .sort();
}

const cases = list(vectorsDir, "expected.json");
const errorCases = list(join(vectorsDir, "errors"), "expected_error.txt");

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
const runners: [string, (file: string) => [string, string[]]][] = [["tsx", (f) => [tsx, [f, "--emit"]]]];
if (major > 22 || (major === 22 && minor >= 6)) {
  runners.push([
    "strip-types",
    (f) => [process.execPath, ["--experimental-strip-types", "--no-warnings", f, "--emit"]],
  ]);
}

for (const [runner, command] of runners) {
  describe(`vectors under ${runner}`, () => {
    const outcomes = new Map<string, Outcome>();
    before(async () => {
      const files = [
        ...cases.map((c) => join(vectorsDir, c, "sykli.ts")),
        ...errorCases.map((c) => join(vectorsDir, "errors", c, "sykli.ts")),
      ];
      const results = await pool(
        files.map((f) => () => {
          const [cmd, args] = command(f);
          return run(cmd, args);
        }),
        4,
      );
      files.forEach((f, i) => {
        const r = results[i];
        if (r !== undefined) outcomes.set(f, r);
      });
    });

    test("there are at least 20 vectors and some error cases", () => {
      assert.ok(cases.length >= 20, `only ${cases.length} vectors`);
      assert.ok(errorCases.length >= 10, `only ${errorCases.length} error cases`);
    });

    for (const c of cases) {
      test(c, () => {
        const r = outcomes.get(join(vectorsDir, c, "sykli.ts"));
        assert.ok(r !== undefined);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, readFileSync(join(vectorsDir, c, "expected.json"), "utf8"));
      });
    }

    for (const c of errorCases) {
      test(`errors/${c}`, () => {
        const r = outcomes.get(join(vectorsDir, "errors", c, "sykli.ts"));
        assert.ok(r !== undefined);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, "");
        assert.equal(r.stderr, readFileSync(join(vectorsDir, "errors", c, "expected_error.txt"), "utf8"));
      });
    }
  });
}

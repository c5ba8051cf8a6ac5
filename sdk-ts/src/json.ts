/**
 * A tiny canonical JSON writer: two-space indent, `"key": value`, a trailing
 * newline; the same bytes serde_json's pretty printer and Go's encoder produce.
 * Objects are `Map`s so key order is exactly insertion order (plain objects put
 * integer-like keys first).
 */

/** A JSON value with ordered objects. */
export type Json = string | number | boolean | readonly Json[] | JsonObject;

/** A JSON object whose keys are written in insertion order. */
export type JsonObject = Map<string, Json>;

/** Renders `value` as pretty JSON followed by a newline. */
export function render(value: Json): string {
  return write(value, "") + "\n";
}

function write(value: Json, indent: string): string {
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw new RangeError(`cannot encode ${value} as JSON`);
    }
    return String(value);
  }
  if (typeof value === "boolean") {
    return value ? "true" : "false";
  }
  const inner = indent + "  ";
  if (value instanceof Map) {
    if (value.size === 0) {
      return "{}";
    }
    const parts: string[] = [];
    for (const [k, v] of value) {
      parts.push(`${inner}${JSON.stringify(k)}: ${write(v, inner)}`);
    }
    return `{\n${parts.join(",\n")}\n${indent}}`;
  }
  if (value.length === 0) {
    return "[]";
  }
  return `[\n${value.map((v) => inner + write(v, inner)).join(",\n")}\n${indent}]`;
}

/**
 * Compares strings by Unicode code point, which is the UTF-8 byte order Rust's
 * BTreeMap and Go's encoding/json sort map keys by (plain `<` compares UTF-16 units).
 */
export function compareKeys(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done === true || cb.done === true) {
      return (ca.done === true ? 0 : 1) - (cb.done === true ? 0 : 1);
    }
    const d = (ca.value.codePointAt(0) ?? 0) - (cb.value.codePointAt(0) ?? 0);
    if (d !== 0) {
      return d;
    }
  }
}

/** A `Map` of `entries` sorted by key (see {@link compareKeys}). */
export function sortedMap<V extends Json>(entries: Iterable<[string, V]>): JsonObject {
  return new Map([...entries].sort(([a], [b]) => compareKeys(a, b)));
}

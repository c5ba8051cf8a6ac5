/** Typed condition expressions, rendered exactly as every sykli SDK renders them. */

/** A condition for `task.whenCond(...)`. Combine with `and`, `or` and `not`. */
export class Condition {
  readonly #expr: string;

  /** Wraps an already rendered expression; prefer the helper functions. */
  constructor(expr: string) {
    this.#expr = expr;
  }

  /** Holds when both this and `other` hold: `(A) && (B)`. */
  and(other: Condition): Condition {
    return new Condition(`(${this.#expr}) && (${other.#expr})`);
  }

  /** Holds when this or `other` holds: `(A) || (B)`. */
  or(other: Condition): Condition {
    return new Condition(`(${this.#expr}) || (${other.#expr})`);
  }

  /** Negates this condition: `!(A)`. */
  not(): Condition {
    return new Condition(`!(${this.#expr})`);
  }

  /** The rendered expression. */
  toString(): string {
    return this.#expr;
  }
}

/** Holds on the given branch; a pattern containing `*` is a glob. */
export function branch(pattern: string): Condition {
  return new Condition(
    pattern.includes("*") ? `branch matches '${pattern}'` : `branch == '${pattern}'`,
  );
}

/** Holds on the given tag; a pattern containing `*` is a glob, an empty one means any tag. */
export function tag(pattern: string): Condition {
  if (pattern === "") {
    return hasTag();
  }
  return new Condition(pattern.includes("*") ? `tag matches '${pattern}'` : `tag == '${pattern}'`);
}

/** Holds when the commit is tagged. */
export function hasTag(): Condition {
  return new Condition("tag != ''");
}

/** Holds for the given CI event (`push`, `pull_request`, ...). */
export function event(name: string): Condition {
  return new Condition(`event == '${name}'`);
}

/** Holds when running in CI. */
export function inCI(): Condition {
  return new Condition("ci == true");
}

/** Negates `c`: `!(C)`. */
export function not(c: Condition): Condition {
  return c.not();
}

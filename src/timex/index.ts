/**
 * Timex: the time-expression language of Winchester's `expiration`, time-valued
 * `distinguished_by`, criteria `timestamp` and datetime trait criteria (SPEC §3).
 *
 * ```ts
 * const expr = parseTimex('day($launched_at) + 6h');   // once, at config load
 * const range = expr.evaluate({ launched_at }, now);     // per event
 * if (contains(range, event.timestamp)) …
 * ```
 */
import { type Compiled, compileNode } from './compile.js';
import type { Instant } from './instant.js';
import { type Node, parseTree } from './parser.js';
import type { TimexExpression, TimexValue, TimexVariables } from './types.js';

export type { Duration, RangeUnit, Unit } from './duration.js';
export { TimexError, TimexEvalError, TimexSyntaxError } from './errors.js';
export type { TimexExpression, TimexValue, TimexVariables } from './types.js';

function collectVariables(n: Node, out: Set<string>): void {
  switch (n.k) {
    case 'var':
      out.add(n.name);
      return;
    case 'func':
      if (n.arg === null) out.add('timestamp');
      else collectVariables(n.arg, out);
      return;
    case 'to':
      collectVariables(n.begin, out);
      collectVariables(n.end, out);
      return;
    case 'op':
      collectVariables(n.operand, out);
      return;
  }
}

/** A parsed and compiled expression. */
class CompiledTimex implements TimexExpression {
  readonly source: string;
  readonly variables: ReadonlySet<string>;
  /** What every evaluation returns: a single `timestamp` or a `range`; known without evaluating. */
  readonly kind: 'timestamp' | 'range';
  readonly evaluate: (vars: TimexVariables, now: Instant) => TimexValue;

  constructor(source: string, tree: Node, compiled: Compiled) {
    this.source = source;
    const names = new Set<string>();
    collectVariables(tree, names);
    this.variables = names;
    this.kind = compiled.type;
    if (compiled.type === 'timestamp') {
      const fn = compiled.fn;
      this.evaluate = (vars, now) => ({ kind: 'timestamp', at: fn(vars, now) });
    } else {
      // The range object already has the TimexValue shape (plus the anchor of a pinned range).
      this.evaluate = compiled.fn;
    }
  }

  toString(): string {
    return this.source;
  }
}

/**
 * Parses and compiles a timex expression. Throws a `TimexSyntaxError` (with the 0-based
 * `position`) for text that is not an expression, including statically invalid ones: an unknown
 * range function, a unitless number on a timestamp, or a replacement that no date can take
 * (`@ 25h`). The result evaluates without re-parsing.
 */
export function parseTimex(source: string): TimexExpression & { readonly kind: 'timestamp' | 'range' } {
  const tree = parseTree(source);
  return new CompiledTimex(source, tree, compileNode(tree));
}

/** Whether `t` lies in a value: equal to a timestamp, or begin ≤ t < end for a range. */
export function contains(value: TimexValue, t: Instant): boolean {
  return value.kind === 'timestamp' ? value.at === t : t >= value.begin && t < value.end;
}

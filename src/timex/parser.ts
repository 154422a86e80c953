/**
 * Lexer and recursive-descent parser for timex. The grammar (re-derived from the reference's
 * LALR grammar and its precedence table):
 *
 *   expression := chain [ 'to' chain ]          both chains must be timestamps
 *   chain      := primary { ('+' | '-' | '@') duration }
 *   primary    := '$' NAME
 *               | FUNCTION [ '(' expression ')' ]   hour | day | month | year; argument a timestamp
 *               | '(' expression ')'
 *   duration   := NUMBER [UNIT] { NUMBER [UNIT] }
 *
 * Operators apply left to right, and those after `to` apply to its right-hand side
 * (`$a to $b + 1h` is `$a to ($b + 1h)`), as in the reference. A unitless number is allowed
 * only directly on a `to` range or a range function, where the range's length gives it a unit.
 */
import { addDurations, type Duration, invalidReplacement, type RangeUnit, UNIT_WORDS } from './duration.js';
import { TimexSyntaxError } from './errors.js';

type TokenKind = 'number' | 'name' | '+' | '-' | '@' | '$' | '(' | ')' | 'end';

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly pos: number;
  /** True when whitespace separates this token from the previous one. */
  readonly spaced: boolean;
}

export type Operator = '+' | '-' | '@';

/** The syntax tree. Every node keeps the position of the construct it came from. */
export type Node =
  | { readonly k: 'var'; readonly name: string; readonly pos: number }
  | { readonly k: 'func'; readonly unit: RangeUnit; readonly arg: Node | null; readonly pos: number }
  | { readonly k: 'to'; readonly begin: Node; readonly end: Node; readonly pos: number }
  | {
      readonly k: 'op';
      readonly op: Operator;
      readonly operand: Node;
      readonly duration: Duration;
      readonly pos: number;
    };

const FUNCTIONS: ReadonlySet<string> = new Set<RangeUnit>(['hour', 'day', 'month', 'year']);
const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const DIGIT = /[0-9]/;
const LETTER = /[A-Za-z]/;
const SPACE = /[ \t\r\n]/;

function describe(t: Token): string {
  return t.kind === 'end' ? 'end of expression' : `token '${t.text}'`;
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let spaced = false;
  while (i < source.length) {
    const c = source[i]!;
    if (SPACE.test(c)) {
      spaced = true;
      i++;
      continue;
    }
    const start = i;
    if (DIGIT.test(c)) {
      while (i < source.length && DIGIT.test(source[i]!)) i++;
      tokens.push({ kind: 'number', text: source.slice(start, i), pos: start, spaced });
      // A unit written right after its number ends at the first non-letter, so `6h30m` reads as
      // `6h 30m` (the reference's identifier rule would swallow `h30m` and reject it).
      let j = i;
      while (j < source.length && LETTER.test(source[j]!)) j++;
      if (j > i && UNIT_WORDS[source.slice(i, j)] !== undefined) {
        tokens.push({ kind: 'name', text: source.slice(i, j), pos: i, spaced: false });
        i = j;
      }
    } else if (NAME_START.test(c)) {
      while (i < source.length && NAME_CHAR.test(source[i]!)) i++;
      tokens.push({ kind: 'name', text: source.slice(start, i), pos: start, spaced });
    } else if (c === '+' || c === '-' || c === '@' || c === '$' || c === '(' || c === ')') {
      i++;
      tokens.push({ kind: c, text: c, pos: start, spaced });
    } else {
      const shown = JSON.stringify(String.fromCodePoint(source.codePointAt(i)!)).slice(1, -1);
      throw new TimexSyntaxError(`unexpected character '${shown}'`, source, start);
    }
    spaced = false;
  }
  tokens.push({ kind: 'end', text: '', pos: source.length, spaced });
  return tokens;
}

/** Whether a node evaluates to a range (a `to` or a range function, possibly shifted). */
export function isRangeNode(n: Node): boolean {
  switch (n.k) {
    case 'var':
      return false;
    case 'func':
    case 'to':
      return true;
    case 'op':
      return isRangeNode(n.operand);
  }
}

class Parser {
  private readonly tokens: Token[];
  private i = 0;

  constructor(private readonly source: string) {
    this.tokens = tokenize(source);
  }

  parse(): Node {
    const node = this.expression(false);
    const t = this.peek();
    if (t.kind !== 'end') {
      if (t.kind === 'name' && t.text === 'to') {
        throw this.error(`'to' cannot follow a range (only 'timestamp to timestamp' makes a range)`, t);
      }
      throw this.error(`unexpected ${describe(t)}`, t);
    }
    return node;
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    return this.tokens[this.i++]!;
  }

  private error(message: string, t: Token): TimexSyntaxError {
    return new TimexSyntaxError(message, this.source, t.pos);
  }

  /** `timestampOnly` is set where the grammar wants a timestamp (a function argument). */
  private expression(timestampOnly: boolean): Node {
    const begin = this.chain(timestampOnly);
    const t = this.peek();
    if (t.kind !== 'name' || t.text !== 'to' || timestampOnly) return begin;
    if (isRangeNode(begin)) {
      throw this.error(`'to' needs a timestamp on its left, not a range`, t);
    }
    this.next();
    const end = this.chain(true);
    return { k: 'to', begin, end, pos: t.pos };
  }

  private chain(timestampOnly: boolean): Node {
    let node = this.primary(timestampOnly);
    for (;;) {
      const t = this.peek();
      if (t.kind !== '+' && t.kind !== '-' && t.kind !== '@') return node;
      this.next();
      const durationStart = this.peek();
      const duration = this.duration();
      if (duration.unitless !== undefined) {
        // Only a `to` range or a range function (parentheses aside) gives a bare number a unit.
        if (node.k !== 'to' && node.k !== 'func') {
          const what = isRangeNode(node) ? 'a range that has already been shifted' : 'a timestamp';
          throw this.error(`a duration needs a unit (y, mo, d, h, m, s, us) on ${what}`, durationStart);
        }
      } else if (t.kind === '@') {
        const bad = invalidReplacement(duration);
        if (bad) {
          throw this.error(
            `cannot replace ${bad.unit} with ${bad.value} (allowed ${bad.min}–${bad.max})`,
            durationStart,
          );
        }
      }
      node = { k: 'op', op: t.kind, operand: node, duration, pos: t.pos };
    }
  }

  private primary(timestampOnly: boolean): Node {
    const t = this.next();
    if (t.kind === '$') {
      const name = this.next();
      if (name.kind !== 'name')
        throw this.error(`expected a variable name after '$', found ${describe(name)}`, name);
      // The reference's lexer makes unit words and `to` keywords everywhere; `$h` is not a variable.
      if (name.text === 'to' || UNIT_WORDS[name.text] !== undefined) {
        throw this.error(`'${name.text}' is a reserved word and cannot name a variable`, name);
      }
      return { k: 'var', name: name.text, pos: t.pos };
    }
    if (t.kind === '(') {
      const inner = this.expression(timestampOnly);
      const close = this.next();
      if (close.kind !== ')') {
        if (close.kind === 'name' && close.text === 'to') {
          throw this.error(`'to' is not allowed here (a timestamp is expected)`, close);
        }
        throw this.error(`expected ')' to close '(' at position ${t.pos}, found ${describe(close)}`, close);
      }
      return inner;
    }
    if (t.kind === 'name' && t.text !== 'to') {
      if (!FUNCTIONS.has(t.text)) {
        throw this.error(`unknown range function '${t.text}' (expected hour, day, month or year)`, t);
      }
      if (timestampOnly) {
        throw this.error(`a timestamp is expected here, but '${t.text}' is a range`, t);
      }
      if (this.peek().kind !== '(') return { k: 'func', unit: t.text as RangeUnit, arg: null, pos: t.pos };
      this.next();
      const arg = this.expression(true);
      const close = this.next();
      if (close.kind !== ')') {
        if (close.kind === 'name' && close.text === 'to') {
          throw this.error(`the argument of '${t.text}' must be a timestamp, not a range`, close);
        }
        throw this.error(`expected ')' to close '${t.text}(', found ${describe(close)}`, close);
      }
      return { k: 'func', unit: t.text as RangeUnit, arg, pos: t.pos };
    }
    throw this.error(`unexpected ${describe(t)}`, t);
  }

  private duration(): Duration {
    let d: Duration = {};
    let first = true;
    while (this.peek().kind === 'number') {
      const num = this.next();
      const value = Number(num.text);
      if (!Number.isSafeInteger(value)) throw this.error(`number '${num.text}' is too large`, num);
      const u = this.peek();
      const unit = u.kind === 'name' ? UNIT_WORDS[u.text] : undefined;
      if (unit !== undefined) {
        this.next();
        d = addDurations(d, { [unit]: value });
      } else {
        if (u.kind === 'name' && !u.spaced && u.text !== 'to') {
          throw this.error(`unknown duration unit '${u.text}' (expected y, mo, d, h, m, s or us)`, u);
        }
        d = addDurations(d, { unitless: value });
      }
      first = false;
    }
    if (first) {
      const t = this.peek();
      throw this.error(`expected a duration (such as 1d or 30m), found ${describe(t)}`, t);
    }
    return d;
  }
}

/** Parses an expression into its syntax tree; throws {@link TimexSyntaxError}. */
export function parseTree(source: string): Node {
  return new Parser(source).parse();
}

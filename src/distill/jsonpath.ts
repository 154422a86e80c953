/**
 * The field paths of event_definitions.yaml: the JSONPath dialect of the reference's `jsonpath_rw`
 * library, re-derived so existing definitions select exactly the same values.
 *
 * Syntax (whitespace between tokens is ignored):
 * - `a.b.c` children; `a[b]` is the same as `a.b`; `a.'x.y'` / `a."x.y"` quote a key with dots or
 *   other special characters (a backslash takes the next character literally);
 * - `a.b,c` several keys; `*` every value of an object; `[0]`, `[-1]` list indexes; `[*]`, `[1:3]`
 *   list slices (a non-list value is treated as a one-element list, as the reference does);
 * - `$` the root, `` `this` ``, `` `parent` ``; `a..b` any descendant `b` of `a`;
 *   `a | b` union; `a where b` the `a`s that have a `b`; parentheses.
 *
 * Operator precedence is the reference's, loosest first: `..`, `.`, `|`, `where` — so `a.b|c.d`
 * means `a.(b|c).d` (which is why a list of fields is compiled as `(p1)|(p2)`, never by splicing).
 * Keys are unquoted identifiers `[A-Za-z_@][A-Za-z0-9_@-]*`; anything else must be quoted.
 *
 * Differences from the reference, all where it would crash: an index or slice on a value that is
 * not a list, a `parent` of the root, or a negative index past the start select nothing instead of
 * raising; `&` (intersection, unimplemented in the reference) is rejected when the path is compiled.
 */

/** A syntax error in a path; `column` is 1-based. */
export class JsonPathError extends Error {
  override name = 'JsonPathError';
  constructor(
    message: string,
    readonly column: number,
  ) {
    super(message);
  }
}

type Ast =
  | { k: 'fields'; names: string[] } // '*' is kept as a name, as the reference does
  | { k: 'root' }
  | { k: 'this' }
  | { k: 'parent' }
  | { k: 'index'; i: number }
  | { k: 'slice'; start: number | null; end: number | null; all: boolean }
  | { k: 'child' | 'desc' | 'union' | 'where'; l: Ast; r: Ast };

type TokType = 'id' | 'num' | 'op' | 'named' | 'where' | 'dd' | 'eof';
interface Tok {
  t: TokType;
  v: string;
  pos: number;
}

const ID_START = /[A-Za-z_@]/;
const ID_CHAR = /[A-Za-z0-9_@-]/;
const SINGLE_CHARS = new Set(['*', '.', '[', ']', '(', ')', '$', ',', ':', '|', '&']);

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '.' && src[i + 1] === '.') {
      out.push({ t: 'dd', v: '..', pos: i });
      i += 2;
      continue;
    }
    if (ID_START.test(c)) {
      let j = i + 1;
      while (j < src.length && ID_CHAR.test(src[j]!)) j++;
      const v = src.slice(i, j);
      out.push({ t: v === 'where' ? 'where' : 'id', v, pos: i });
      i = j;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = c === '-' ? i + 1 : i;
      const digitsFrom = j;
      while (j < src.length && src[j]! >= '0' && src[j]! <= '9') j++;
      if (j === digitsFrom) throw new JsonPathError(`unexpected character '-'`, i + 1);
      out.push({ t: 'num', v: src.slice(i, j), pos: i });
      i = j;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= src.length) throw new JsonPathError(`unterminated ${c}-quoted name`, i + 1);
        const d = src[j]!;
        if (d === '\\') {
          if (j + 1 >= src.length) throw new JsonPathError(`unterminated ${c}-quoted name`, i + 1);
          v += src[j + 1];
          j += 2;
        } else if (d === c) {
          j++;
          break;
        } else {
          v += d;
          j++;
        }
      }
      out.push({ t: c === '`' ? 'named' : 'id', v, pos: i });
      i = j;
      continue;
    }
    if (SINGLE_CHARS.has(c)) {
      out.push({ t: 'op', v: c, pos: i });
      i++;
      continue;
    }
    throw new JsonPathError(`unexpected character '${c}'`, i + 1);
  }
  out.push({ t: 'eof', v: '', pos: src.length });
  return out;
}

// Binding strength of the binary operators (higher binds tighter), as in the reference grammar.
const PREC: Record<string, number> = { '..': 1, '.': 2, '|': 3, '&': 4, where: 5 };

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }

  private next(): Tok {
    return this.toks[this.i++]!;
  }

  private fail(tok: Tok, what: string): never {
    const near = tok.t === 'eof' ? 'end of path' : `'${tok.v}'`;
    throw new JsonPathError(`${what} near ${near}`, tok.pos + 1);
  }

  private expectOp(v: string): void {
    const tok = this.next();
    if (tok.t !== 'op' || tok.v !== v) this.fail(tok, `expected '${v}'`);
  }

  parse(): Ast {
    if (this.peek().t === 'eof') this.fail(this.peek(), 'empty path');
    const ast = this.expr(0);
    if (this.peek().t !== 'eof') this.fail(this.peek(), 'unexpected token');
    return ast;
  }

  private binop(): string | undefined {
    const tok = this.peek();
    if (tok.t === 'dd') return '..';
    if (tok.t === 'where') return 'where';
    if (tok.t === 'op' && (tok.v === '.' || tok.v === '|' || tok.v === '&')) return tok.v;
    return undefined;
  }

  private expr(minPrec: number): Ast {
    let left = this.postfix();
    for (;;) {
      const op = this.binop();
      if (op === undefined) return left;
      const prec = PREC[op]!;
      if (prec < minPrec) return left;
      const opTok = this.next();
      if (op === '&') throw new JsonPathError(`'&' (intersection) is not supported`, opTok.pos + 1);
      const right = this.expr(prec + 1); // left-associative
      const k = op === '..' ? 'desc' : op === '.' ? 'child' : op === '|' ? 'union' : 'where';
      left = { k, l: left, r: right };
    }
  }

  private postfix(): Ast {
    let node = this.primary();
    while (this.peek().t === 'op' && this.peek().v === '[') {
      node = { k: 'child', l: node, r: this.bracket() };
    }
    return node;
  }

  private fieldList(): string[] {
    const names: string[] = [];
    for (;;) {
      const tok = this.next();
      if (tok.t !== 'id') this.fail(tok, 'expected a field name');
      names.push(tok.v);
      if (!(this.peek().t === 'op' && this.peek().v === ',')) return names;
      this.next();
    }
  }

  private maybeInt(): number | null {
    if (this.peek().t !== 'num') return null;
    return Number(this.next().v);
  }

  /** `[ idx ]`, `[ slice ]` or `[ fields ]`, starting at the '['. */
  private bracket(): Ast {
    this.expectOp('[');
    const tok = this.peek();
    let node: Ast;
    if (tok.t === 'op' && tok.v === '*') {
      this.next();
      node = { k: 'slice', start: null, end: null, all: true };
    } else if (tok.t === 'id') {
      node = { k: 'fields', names: this.fieldList() };
    } else {
      const start = this.maybeInt();
      if (this.peek().t === 'op' && this.peek().v === ':') {
        this.next();
        node = { k: 'slice', start, end: this.maybeInt(), all: false };
      } else if (start !== null) {
        node = { k: 'index', i: start };
      } else {
        this.fail(this.peek(), 'expected an index, a slice or a field name');
      }
    }
    this.expectOp(']');
    return node;
  }

  private primary(): Ast {
    const tok = this.peek();
    if (tok.t === 'id') return { k: 'fields', names: this.fieldList() };
    if (tok.t === 'named') {
      this.next();
      if (tok.v === 'this') return { k: 'this' };
      if (tok.v === 'parent') return { k: 'parent' };
      this.fail(tok, `unknown operator \`${tok.v}\``);
    }
    if (tok.t === 'op') {
      if (tok.v === '*') {
        this.next();
        return { k: 'fields', names: ['*'] };
      }
      if (tok.v === '$') {
        this.next();
        return { k: 'root' };
      }
      if (tok.v === '[') return this.bracket();
      if (tok.v === '(') {
        this.next();
        const inner = this.expr(0);
        this.expectOp(')');
        return inner;
      }
    }
    this.fail(tok, 'unexpected token');
  }
}

/** A value found in the notification, with the chain of keys/indexes that led to it. */
interface Datum {
  readonly value: unknown;
  /** The step from `ctx` to this datum: a key, or `[i]` for a list index; null for the root. */
  readonly seg: string | null;
  readonly ctx: Datum | null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function pyLength(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length;
  return undefined;
}

/** Python slice bounds for `range(len)[start:end]`. */
function sliceBounds(len: number, start: number | null, end: number | null): [number, number] {
  const norm = (x: number) => (x < 0 ? Math.max(0, len + x) : Math.min(len, x));
  return [start === null ? 0 : norm(start), end === null ? len : norm(end)];
}

function find(ast: Ast, d: Datum, out: Datum[]): void {
  switch (ast.k) {
    case 'fields': {
      const v = d.value;
      if (!isObject(v)) return;
      for (const name of ast.names) {
        if (name === '*') {
          for (const key of Object.keys(v)) out.push({ value: v[key], seg: key, ctx: d });
        } else if (Object.hasOwn(v, name)) {
          out.push({ value: v[name], seg: name, ctx: d });
        }
      }
      return;
    }
    case 'root': {
      let r = d;
      while (r.ctx !== null) r = r.ctx;
      out.push(r);
      return;
    }
    case 'this':
      out.push(d);
      return;
    case 'parent':
      if (d.ctx !== null) out.push(d.ctx);
      return;
    case 'index': {
      const v = d.value;
      if (Array.isArray(v)) {
        const i = ast.i < 0 ? v.length + ast.i : ast.i;
        if (i >= 0 && i < v.length) out.push({ value: v[i], seg: `[${ast.i}]`, ctx: d });
      } else if (typeof v === 'string') {
        // Python indexes a str by code point.
        const chars = Array.from(v);
        const i = ast.i < 0 ? chars.length + ast.i : ast.i;
        if (i >= 0 && i < chars.length) out.push({ value: chars[i], seg: `[${ast.i}]`, ctx: d });
      }
      return;
    }
    case 'slice': {
      let list: unknown[];
      let holder: Datum;
      if (Array.isArray(d.value)) {
        list = d.value;
        holder = d;
      } else if (d.value === null || d.value === undefined) {
        return;
      } else {
        // The reference wraps a scalar or mapping in a one-element list (same place in the path).
        list = [d.value];
        holder = { value: list, seg: d.seg, ctx: d.ctx };
      }
      const len = pyLength(list)!;
      const [from, to] = ast.all ? [0, len] : sliceBounds(len, ast.start, ast.end);
      for (let i = from; i < to; i++) out.push({ value: list[i], seg: `[${i}]`, ctx: holder });
      return;
    }
    case 'child': {
      const left: Datum[] = [];
      find(ast.l, d, left);
      for (const sub of left) find(ast.r, sub, out);
      return;
    }
    case 'union':
      find(ast.l, d, out);
      find(ast.r, d, out);
      return;
    case 'where': {
      const left: Datum[] = [];
      find(ast.l, d, left);
      for (const sub of left) {
        const probe: Datum[] = [];
        find(ast.r, sub, probe);
        if (probe.length > 0) out.push(sub);
      }
      return;
    }
    case 'desc': {
      const left: Datum[] = [];
      find(ast.l, d, left);
      const right = ast.r;
      const walk = (x: Datum) => {
        find(right, x, out);
        const v = x.value;
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) walk({ value: v[i], seg: `[${i}]`, ctx: x });
        } else if (isObject(v)) {
          for (const key of Object.keys(v)) walk({ value: v[key], seg: key, ctx: x });
        }
      };
      for (const l of left) walk(l);
      return;
    }
  }
}

/** The path of a datum as the reference hands it to plugins: the steps joined by '.', root omitted. */
function pathOf(d: Datum): string {
  const segs: string[] = [];
  for (let x: Datum | null = d; x !== null && x.ctx !== null; x = x.ctx) segs.push(x.seg ?? '');
  return segs.reverse().join('.');
}

/** A (path, value) pair as trait plugins receive it. */
export type FieldMatch = readonly [path: string, value: unknown];

/**
 * One or more compiled paths (a trait's `fields`). Built once at load time; evaluation allocates
 * nothing for the common case of plain dotted keys.
 */
export interface FieldSelector {
  /** The first value found (in path order, then document order) that is not null, else undefined. */
  first(root: unknown): unknown;
  /** Every non-null value found, with its path, in the order the reference reports them. */
  matches(root: unknown): FieldMatch[];
}

/** Parses one path; throws {@link JsonPathError}. */
export function parsePath(src: string): Ast {
  return new Parser(lex(src)).parse();
}

/** The key chain of a path made only of single plain keys (optionally after `$`), else undefined. */
function plainKeys(ast: Ast): string[] | undefined {
  if (ast.k === 'fields') return ast.names.length === 1 && ast.names[0] !== '*' ? [ast.names[0]!] : undefined;
  if (ast.k === 'child') {
    if (ast.l.k === 'root') return plainKeys(ast.r);
    const l = plainKeys(ast.l);
    const r = l && plainKeys(ast.r);
    return l && r ? [...l, ...r] : undefined;
  }
  return undefined;
}

// Keys that an object can answer without owning them (Object.prototype members) and keys a JSON
// array answers ("length", indexes): only these need the slower own-property / not-an-array checks,
// which the reference gets for free from Python's dict lookup.
const PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));
const ARRAY_KEY = /^(?:length|\d+)$/;

/**
 * Compiles a chain of plain keys into a getter with the keys as constants. This is the hot path:
 * V8 handles a constant property name much faster than a key read from an array, and the code is
 * generated only from JSON-quoted key strings.
 */
function compileGetter(keys: readonly string[]): (root: unknown) => unknown {
  let body = 'let v = root;\n';
  for (const k of keys) {
    const q = JSON.stringify(k);
    body += "if (typeof v !== 'object' || v === null) return undefined;\n";
    if (ARRAY_KEY.test(k)) body += 'if (Array.isArray(v)) return undefined;\n';
    if (PROTOTYPE_KEYS.has(k)) body += `if (!Object.hasOwn(v, ${q})) return undefined;\n`;
    body += `v = v[${q}];\n`;
  }
  body += 'return v;';
  return new Function('root', body) as (root: unknown) => unknown;
}

/**
 * Compiles a trait's `fields` (one path or a list of paths, "the first that exists and is not
 * null") into a selector. Throws {@link JsonPathError} naming the column in the offending path.
 */
export function compileFields(paths: readonly string[]): FieldSelector {
  const asts = paths.map(parsePath);
  const chains = asts.map(plainKeys);
  if (chains.every((c) => c !== undefined)) {
    const keyChains = chains as string[][];
    const names = keyChains.map((c) => c.join('.'));
    const getters = keyChains.map(compileGetter);
    if (getters.length === 1) {
      const get = getters[0]!;
      const name = names[0]!;
      return {
        first: (root) => {
          const v = get(root);
          return v === null ? undefined : v;
        },
        matches: (root) => {
          const v = get(root);
          return v === null || v === undefined ? [] : [[name, v]];
        },
      };
    }
    return {
      first(root) {
        for (let i = 0; i < getters.length; i++) {
          const v = getters[i]!(root);
          if (v !== null && v !== undefined) return v;
        }
        return undefined;
      },
      matches(root) {
        const out: FieldMatch[] = [];
        for (let i = 0; i < getters.length; i++) {
          const v = getters[i]!(root);
          if (v !== null && v !== undefined) out.push([names[i]!, v]);
        }
        return out;
      },
    };
  }
  const all = (root: unknown): Datum[] => {
    const top: Datum = { value: root, seg: null, ctx: null };
    const out: Datum[] = [];
    for (const ast of asts) find(ast, top, out);
    return out;
  };
  return {
    first(root) {
      for (const d of all(root)) if (d.value !== null && d.value !== undefined) return d.value;
      return undefined;
    },
    matches(root) {
      const out: FieldMatch[] = [];
      for (const d of all(root))
        if (d.value !== null && d.value !== undefined) out.push([pathOf(d), d.value]);
      return out;
    },
  };
}

import type { Pos, Problems } from './problems.js';
import {
  envName,
  type Fields,
  type Leaf,
  leaves,
  type Section,
  type Settings,
  type Spec,
  winchesterSchema,
} from './schema.js';
import { describe, type YMap, type YNode } from './yaml.js';

/** Where environment overrides are reported, in place of a file name. */
export const ENV_SOURCE = '(environment)';

/** Validated settings and where each was written (dotted path → position), for later checks. */
export interface ReadSettings {
  readonly settings: Settings;
  readonly positions: ReadonlyMap<string, Pos>;
  /** Dotted paths whose value came from an environment variable, with the variable's name. */
  readonly fromEnv: ReadonlyMap<string, string>;
}

/**
 * Validates the top-level node of winchester.yaml against {@link winchesterSchema}, applies
 * defaults, then environment overrides (`WINCHESTER_<PATH>` first, then aliases such as
 * `DATABASE_URL`). Problems go to `problems`; invalid values fall back to their defaults so that
 * checking can go on.
 */
export function readSettings(
  root: YNode | null,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  problems: Problems,
): ReadSettings {
  const positions = new Map<string, Pos>();
  const fromEnv = new Map<string, string>();
  let top: YMap | null = null;
  if (root !== null) {
    if (root.kind === 'map') top = root;
    else
      problems.error(file, root.pos, `winchester.yaml must be a mapping of settings, not ${describe(root)}`);
  }
  const settings = readSection(winchesterSchema, top, [], { file, problems, positions }) as Record<
    string,
    unknown
  >;
  for (const [path, spec] of leaves()) {
    if (!spec.env) continue;
    const names = [envName(path), ...(spec.envAliases ?? [])];
    const name = names.find((n) => env[n] !== undefined && env[n] !== '');
    if (name === undefined) continue;
    const raw = env[name] as string;
    const parsed = fromEnvText(spec, raw);
    if ('error' in parsed) {
      problems.error(ENV_SOURCE, undefined, `${name}: ${parsed.error}`);
      continue;
    }
    setPath(settings, path, parsed.value);
    fromEnv.set(path.join('.'), name);
  }
  return { settings: settings as unknown as Settings, positions, fromEnv };
}

interface Ctx {
  file: string;
  problems: Problems;
  positions: Map<string, Pos>;
}

function readSection(
  spec: Section<Fields>,
  node: YMap | null,
  path: string[],
  ctx: Ctx,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(spec.fields)) {
    const entry = node?.get(key);
    const childPath = [...path, key];
    if (entry) ctx.positions.set(childPath.join('.'), entry.value.pos);
    out[key] = readSpec(child, entry?.value ?? null, childPath, ctx);
  }
  if (node) {
    const known = Object.keys(spec.fields);
    for (const e of node.entries) {
      if (Object.hasOwn(spec.fields, e.key)) continue;
      const where = path.length === 0 ? '' : ` in ${path.join('.')}`;
      const near = closest(e.key, known);
      if (near !== undefined) {
        ctx.problems.error(ctx.file, e.keyPos, `unknown setting '${e.key}'${where}; did you mean '${near}'?`);
      } else {
        ctx.problems.unknownKey(ctx.file, e.keyPos, `unknown setting '${e.key}'${where}`);
      }
    }
  }
  return out;
}

function readSpec(spec: Spec, node: YNode | null, path: string[], ctx: Ctx): unknown {
  if (spec.kind === 'section') {
    if (node === null || (node.kind === 'scalar' && node.value === null))
      return readSection(spec, null, path, ctx);
    if (node.kind === 'scalar' && typeof node.value === 'boolean' && 'enabled' in spec.fields) {
      // `ssl: true` is short for `ssl: {enabled: true}`.
      const out = readSection(spec, null, path, ctx);
      out.enabled = node.value;
      return out;
    }
    if (node.kind !== 'map') {
      ctx.problems.error(ctx.file, node.pos, `${path.join('.')} must be a mapping, not ${describe(node)}`);
      return readSection(spec, null, path, ctx);
    }
    return readSection(spec, node, path, ctx);
  }
  if (node === null) return spec.default;
  if (spec.ignored !== undefined) ctx.problems.warn(ctx.file, node.pos, spec.ignored);
  const result = fromNode(spec, node);
  if ('error' in result) {
    ctx.problems.error(ctx.file, node.pos, `${path.join('.')}: ${result.error}`);
    return spec.default;
  }
  return result.value;
}

type Parsed = { value: unknown } | { error: string };

function fromNode(spec: Leaf<unknown>, node: YNode): Parsed {
  if (node.kind === 'scalar' && node.value === null) {
    // An empty value means "not set" for optional settings, as in the reference.
    if (spec.type === 'optional-string' || spec.type === 'file') return { value: null };
    if (spec.type === 'string-list') return { value: [] };
    if (spec.type === 'string-map') return { value: {} };
    return { error: `expected ${expectation(spec)}, got nothing` };
  }
  switch (spec.type) {
    case 'string-list': {
      if (node.kind === 'scalar') {
        if (typeof node.value === 'boolean')
          return { error: `expected ${expectation(spec)}, got ${node.value}` };
        return { value: [String(node.value)] };
      }
      if (node.kind === 'map')
        return { error: `expected a string or a list of strings, got ${describe(node)}` };
      const items: string[] = [];
      for (const item of node.items) {
        if (item.kind !== 'scalar' || item.value === null) {
          return {
            error: `expected a list of strings, but an item is ${describe(item)} (line ${item.pos.line})`,
          };
        }
        items.push(String(item.value));
      }
      return { value: items };
    }
    case 'string-map': {
      if (node.kind !== 'map') return { error: `expected a mapping of name: value, got ${describe(node)}` };
      const out: Record<string, string> = {};
      for (const e of node.entries) {
        if (e.value.kind !== 'scalar' || e.value.value === null || typeof e.value.value === 'boolean') {
          return {
            error: `${e.key}: expected a string, got ${describe(e.value)} (line ${e.value.pos.line})`,
          };
        }
        out[e.key] = String(e.value.value);
      }
      return { value: out };
    }
    default:
      if (node.kind !== 'scalar') return { error: `expected ${expectation(spec)}, got ${describe(node)}` };
      return fromScalar(spec, node.value);
  }
}

function fromScalar(spec: Leaf<unknown>, value: string | number | boolean | null): Parsed {
  switch (spec.type) {
    case 'string':
    case 'optional-string':
    case 'file':
    case 'timex':
      if (typeof value === 'boolean' || value === null)
        return { error: `expected a string, got ${String(value)}` };
      if (spec.type === 'string' && String(value) === '') return { error: 'must not be empty' };
      return { value: String(value) };
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      return { error: `expected true or false, got ${JSON.stringify(value)}` };
    case 'int': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)
            ? Number(value)
            : Number.NaN;
      if (!Number.isSafeInteger(n)) return { error: `expected a whole number, got ${JSON.stringify(value)}` };
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return { error: `must be between ${spec.min} and ${spec.max}, got ${n}` };
      }
      return { value: n };
    }
    case 'seconds': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)\s*$/.test(value)
            ? Number(value)
            : Number.NaN;
      if (!Number.isFinite(n) || n < 0)
        return { error: `expected a number of seconds ≥ 0, got ${JSON.stringify(value)}` };
      if (spec.min !== undefined && n < spec.min)
        return { error: `must be at least ${spec.min} seconds, got ${n}` };
      return { value: n };
    }
    case 'enum': {
      const text = typeof value === 'string' ? value.trim().toLowerCase() : String(value);
      const values = spec.values ?? [];
      if (text === 'warn' && values.includes('warning')) return { value: 'warning' };
      if (!values.includes(text))
        return { error: `expected one of ${values.join(', ')}, got ${JSON.stringify(value)}` };
      return { value: text };
    }
    default:
      return { error: `expected ${expectation(spec)}` };
  }
}

function fromEnvText(spec: Leaf<unknown>, raw: string): Parsed {
  switch (spec.type) {
    case 'string-list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      return items.length === 0 ? { error: 'expected a comma-separated list' } : { value: items };
    }
    case 'boolean': {
      const t = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return { value: true };
      if (['0', 'false', 'no', 'off'].includes(t)) return { value: false };
      return { error: `expected true or false, got ${JSON.stringify(raw)}` };
    }
    case 'int':
    case 'seconds':
      return fromScalar(spec, raw.trim());
    default: {
      const parsed = fromScalar(spec, raw);
      // Never echo a secret (a database URL holds a password) back into logs.
      if ('error' in parsed && spec.secret) return { error: 'invalid value' };
      return parsed;
    }
  }
}

function expectation(spec: Leaf<unknown>): string {
  switch (spec.type) {
    case 'string':
    case 'optional-string':
    case 'timex':
      return 'a string';
    case 'file':
      return 'a file name';
    case 'string-list':
      return 'a string or a list of strings';
    case 'int':
      return 'a whole number';
    case 'seconds':
      return 'a number of seconds';
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${(spec.values ?? []).join(', ')}`;
    case 'string-map':
      return 'a mapping';
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1] as string] = value;
}

/**
 * The known key an unknown one is most likely a typo of: same letters ignoring case and `-`/`_`,
 * or at most two edits away (one for short keys). Undefined when nothing is that close, in which
 * case the key is probably a deliberate extension and only worth a warning.
 */
export function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    if (norm(k) === norm(key)) return k;
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    const limit = k.length <= 5 ? 1 : 2;
    if (d <= limit && d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}

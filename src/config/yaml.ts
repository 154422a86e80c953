import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  Scalar,
  type Node as YamlLibNode,
} from 'yaml';
import type { Pos, Problems } from './problems.js';
import { pyyamlTags } from './yaml11.js';

/**
 * A YAML value that remembers where it was written, so validation can name the file, line and
 * column of every problem. Merge keys (`<<: *anchor`) and aliases are already resolved.
 */
export type YNode = YScalar | YSeq | YMap;

export interface YScalar {
  readonly kind: 'scalar';
  /** The value as YAML 1.1 types it (what PyYAML's safe_load gives the reference, minus timestamps). */
  readonly value: string | number | boolean | null;
  /** Unquoted in the source: only plain scalars are typed (`yes`, `12`, `2014-08-01 00:00:00`). */
  readonly plain: boolean;
  /** The scalar's text as written, without quotes (column arithmetic for expressions inside it). */
  readonly source: string;
  readonly pos: Pos;
}

export interface YSeq {
  readonly kind: 'seq';
  readonly items: readonly YNode[];
  readonly pos: Pos;
}

export interface YEntry {
  readonly key: string;
  readonly keyPos: Pos;
  readonly value: YNode;
}

export interface YMap {
  readonly kind: 'map';
  /**
   * One entry per key, in the order a PyYAML-built dict has them: merged-in keys first, then the
   * mapping's own; a key keeps its first place and takes the value that wins (own keys over
   * merged ones, the last of duplicate own keys).
   */
  readonly entries: readonly YEntry[];
  readonly pos: Pos;
  get(key: string): YEntry | undefined;
}

/** A parsed file: its name as shown in problems, and its top-level node (null when empty). */
export interface YamlFile {
  readonly file: string;
  readonly root: YNode | null;
}

// PyYAML (which the reference uses) reads YAML 1.1: `yes`/`no` are booleans and `<<` merges, so
// existing files mean the same here. Timestamps are left as strings because a JS Date would drop
// the microseconds; the places that accept datetimes parse them from the text.
const PARSE_OPTIONS = {
  version: '1.1',
  merge: true,
  // PyYAML keeps the last value of duplicate keys silently; so do we, with a warning.
  uniqueKeys: false,
  prettyErrors: true,
  customTags: (tags: unknown[]) => pyyamlTags(tags),
} as const;

/**
 * Parses YAML text into a positioned tree. Syntax errors, duplicate keys and bad merges are
 * added to `problems` (the tree then holds what could be read, or null).
 */
export function parseYaml(text: string, file: string, problems: Problems): YamlFile {
  const lineCounter = new LineCounter();
  // biome-ignore lint/suspicious/noExplicitAny: the yaml typings do not model customTags filtering of unknown[]
  const doc = parseDocument(text, { ...(PARSE_OPTIONS as any), lineCounter });
  const posOf = (offset: number | undefined): Pos => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: p.line, column: p.col };
  };
  let fatal = false;
  for (const err of doc.errors) {
    fatal = true;
    problems.error(
      file,
      err.linePos ? { line: err.linePos[0].line, column: err.linePos[0].col } : undefined,
      `YAML syntax error: ${yamlMessage(err.message)}`,
    );
  }
  for (const w of doc.warnings) {
    problems.warn(
      file,
      w.linePos ? { line: w.linePos[0].line, column: w.linePos[0].col } : undefined,
      `YAML: ${yamlMessage(w.message)}`,
    );
  }
  if (fatal || doc.contents === null) return { file, root: null };
  const converter = new Converter(doc, file, problems, posOf);
  return { file, root: converter.convert(doc.contents as YamlLibNode, posOf(0)) };
}

/** The yaml library appends " at line N, column M:" and a source excerpt; we print positions ourselves. */
function yamlMessage(message: string): string {
  const cut = message.search(/ at line \d+, column \d+/);
  return (cut >= 0 ? message.slice(0, cut) : (message.split('\n')[0] ?? message)).trim();
}

class Converter {
  private readonly active = new Set<YamlLibNode>();
  // Every alias of a mapping or list gets the node already built for its anchor: a file of
  // nested aliases stays linear in size (no "billion laughs"), and a consumer that builds plain
  // values per node (the distiller's loader) gives aliases one shared object, as PyYAML does.
  private readonly built = new Map<YamlLibNode, YNode>();

  constructor(
    private readonly doc: Document,
    private readonly file: string,
    private readonly problems: Problems,
    private readonly posOf: (offset: number | undefined) => Pos,
  ) {}

  convert(node: YamlLibNode | null | undefined, fallback: Pos): YNode {
    if (node === null || node === undefined) {
      return { kind: 'scalar', value: null, plain: true, source: '', pos: fallback };
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc) as YamlLibNode | undefined;
      if (!target) {
        const pos = this.posOf(node.range?.[0]);
        this.problems.error(this.file, pos, `YAML: unknown alias *${node.source}`);
        return { kind: 'scalar', value: null, plain: true, source: '', pos };
      }
      if (this.active.has(target)) {
        const pos = this.posOf(node.range?.[0]);
        this.problems.error(this.file, pos, `YAML: alias *${node.source} refers to itself`);
        return { kind: 'scalar', value: null, plain: true, source: '', pos };
      }
      return this.convert(target, fallback);
    }
    const pos = this.posOf(node.range?.[0]);
    if (isScalar(node)) {
      const v = node.value;
      const value =
        v === null || typeof v === 'string' || typeof v === 'boolean'
          ? v
          : typeof v === 'number'
            ? v
            : typeof v === 'bigint'
              ? Number(v)
              : String(v);
      const plain = node.type === undefined || node.type === Scalar.PLAIN;
      const source = typeof node.source === 'string' ? node.source : String(v ?? '');
      return { kind: 'scalar', value, plain, source, pos };
    }
    const done = this.built.get(node);
    if (done !== undefined) return done;
    this.active.add(node);
    try {
      let out: YNode | undefined;
      if (isSeq(node)) {
        out = { kind: 'seq', items: node.items.map((it) => this.convert(it as YamlLibNode, pos)), pos };
      } else if (isMap(node)) {
        out = this.convertMap(node, pos);
      }
      if (out !== undefined) {
        this.built.set(node, out);
        return out;
      }
    } finally {
      this.active.delete(node);
    }
    this.problems.error(this.file, pos, 'YAML: unsupported node');
    return { kind: 'scalar', value: null, plain: true, source: '', pos };
  }

  private convertMap(node: { items: { key: unknown; value: unknown }[] }, pos: Pos): YMap {
    // PyYAML's flattening: the merged pairs come first (each `<<` in turn; a list of sources in
    // reverse, so its first mapping is applied last), then the mapping's own pairs; building the
    // dict then keeps each key where it first appears, with the value that comes last. So own keys
    // win over merged ones, the first mapping of a `<<` list wins over later ones, and key order
    // is what a Python dict from the reference would have.
    const merged: YEntry[] = [];
    const own: YEntry[] = [];
    const ownSeen = new Set<string>();
    for (const pair of node.items) {
      const keyNode = pair.key as YamlLibNode | null;
      const keyPos = keyNode?.range ? this.posOf(keyNode.range[0]) : pos;
      if (isMergeKey(pair.key)) {
        const source = this.convert(pair.value as YamlLibNode, keyPos);
        const sources = source.kind === 'seq' ? source.items : [source];
        for (let i = sources.length - 1; i >= 0; i--) {
          const src = sources[i] as YNode;
          // A loop, not push(...entries): a huge anchored mapping must not overflow the stack.
          if (src.kind === 'map') for (const e of src.entries) merged.push(e);
          else
            this.problems.error(
              this.file,
              src.pos,
              'YAML: a merge key (<<) needs a mapping or a list of mappings',
            );
        }
        continue;
      }
      const key = keyText(pair.key);
      if (ownSeen.has(key)) {
        this.problems.warn(this.file, keyPos, `duplicate key '${key}': this later value is used`);
      }
      ownSeen.add(key);
      own.push({ key, keyPos, value: this.convert(pair.value as YamlLibNode, keyPos) });
    }
    if (merged.length === 0 && own.length === ownSeen.size) return makeMap(own, pos);
    const slot = new Map<string, number>();
    const entries: YEntry[] = [];
    for (const e of merged.length === 0 ? own : [...merged, ...own]) {
      const at = slot.get(e.key);
      if (at === undefined) {
        slot.set(e.key, entries.length);
        entries.push(e);
      } else {
        entries[at] = e;
      }
    }
    return makeMap(entries, pos);
  }
}

/** `<<` as a plain key (the yaml package marks a resolved merge key with a symbol value). */
function isMergeKey(key: unknown): boolean {
  return (
    isScalar(key) &&
    (typeof key.value === 'symbol' ||
      (key.value === '<<' && (key.type === undefined || key.type === Scalar.PLAIN)))
  );
}

function keyText(key: unknown): string {
  if (isScalar(key)) return key.value === null ? '' : String(key.value);
  if (key === null || key === undefined) return '';
  return String(key);
}

/** Builds a {@link YMap} (also used by tests to make nodes by hand). */
export function makeMap(entries: readonly YEntry[], pos: Pos): YMap {
  const index = new Map<string, YEntry>();
  for (const e of entries) if (!index.has(e.key)) index.set(e.key, e);
  return { kind: 'map', entries, pos, get: (key) => index.get(key) };
}

/** A short human description of a node's kind for "expected X, got Y" messages. */
export function describe(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  const v = node.value;
  if (v === null) return 'nothing (null)';
  if (typeof v === 'boolean') return `a boolean (${v})`;
  if (typeof v === 'number') return `a number (${v})`;
  return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
}

/**
 * Plain (undecoded) JS value of a node, for handler params and other free-form data that is
 * handed on as is.
 */
export function toPlain(node: YNode): unknown {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'seq') return node.items.map(toPlain);
  const out: Record<string, unknown> = {};
  for (const e of node.entries) {
    Object.defineProperty(out, e.key, {
      value: toPlain(e.value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Column where character `index` of a scalar's value sits, for pointing into an expression
 * (exact for plain and simply quoted scalars, which is how expressions are written).
 */
export function columnInScalar(node: YScalar, index: number): number {
  return node.pos.column + (node.plain ? 0 : 1) + index;
}

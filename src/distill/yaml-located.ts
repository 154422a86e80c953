/**
 * Reads a YAML configuration file into plain JS values while remembering where every mapping,
 * list and key came from, so validation can report `file:line:column`.
 *
 * YAML 1.1 (what PyYAML, and so the reference, reads): `yes`/`no` are booleans and `<<` merge
 * keys work. Merge semantics are PyYAML's: keys written in the mapping win over merged ones, and
 * among several merged mappings the first that has a key wins. Duplicate keys are accepted and
 * the last one wins, as in PyYAML, so existing files load unchanged.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type Tags } from 'yaml';
import { pyyamlTags } from '../config/yaml11.js';
import { ConfigError, type ConfigProblem } from '../errors.js';

/** A 1-based position in the file. */
export interface Position {
  line: number;
  column: number;
}

/** A parsed YAML file: its value and the positions of its mappings, lists and keys. */
export interface LocatedYaml {
  readonly file: string;
  readonly value: unknown;
  /** Where a mapping or list (an object from `value`) starts; for a key of a mapping, where that key is. */
  at(container: object, key?: string | number): Position | undefined;
  /** A problem located at a container (or one of its keys), falling back to the container itself. */
  problem(message: string, container?: object, key?: string | number): ConfigProblem;
}

interface Loc {
  pos: Position;
  keys: Map<string | number, Position>;
}

/** Defines a key even when it is `__proto__` (plain assignment would change the prototype). */
function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Parses YAML text; throws {@link ConfigError} listing every syntax error with its line. */
export function parseYamlLocated(text: string, file: string): LocatedYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, {
    customTags: (tags: Tags) => pyyamlTags(tags, { keepTimestamps: true }),
    lineCounter: lc,
    version: '1.1',
    merge: true,
    uniqueKeys: false,
    prettyErrors: false,
  });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return {
          file,
          line: pos.line,
          column: pos.col,
          message: `YAML syntax error: ${e.message.split('\n')[0]}`,
        };
      }),
    );
  }
  const locs = new WeakMap<object, Loc>();
  const cache = new Map<Node, unknown>();
  const inProgress = new Set<Node>();
  const posOf = (node: { range?: [number, number, number] | null } | null | undefined): Position => {
    const p = lc.linePos(node?.range?.[0] ?? 0);
    return { line: p.line, column: p.col };
  };
  const problems: ConfigProblem[] = [];

  const convert = (node: unknown): unknown => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) {
        problems.push({ file, ...posOf(node), message: `unknown alias *${node.source}` });
        return null;
      }
      return convert(target);
    }
    if (isScalar(node)) return node.value;
    const n = node as Node;
    if (cache.has(n)) return cache.get(n);
    if (inProgress.has(n)) {
      problems.push({ file, ...posOf(n), message: 'recursive alias' });
      return null;
    }
    inProgress.add(n);
    try {
      if (isSeq(n)) {
        const arr: unknown[] = [];
        const loc: Loc = { pos: posOf(n), keys: new Map() };
        n.items.forEach((item, i) => {
          arr.push(convert(item));
          loc.keys.set(i, posOf(item as Node));
        });
        locs.set(arr, loc);
        cache.set(n, arr);
        return arr;
      }
      if (isMap(n)) {
        const obj: Record<string, unknown> = {};
        const loc: Loc = { pos: posOf(n), keys: new Map() };
        const merged: Record<string, unknown> = {};
        const mergedLoc = new Map<string, Position>();
        const own = new Set<string>();
        for (const pair of n.items) {
          const key = pair.key;
          const isMerge = isScalar(key) && typeof key.value === 'symbol';
          if (isMerge) {
            const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
            for (const src of sources) {
              const value = convert(src);
              if (typeof value !== 'object' || value === null || Array.isArray(value)) {
                problems.push({
                  file,
                  ...posOf(pair.value as Node),
                  message: "a '<<' merge needs a mapping (or a list of them)",
                });
                continue;
              }
              const srcLoc = locs.get(value);
              for (const [k, v] of Object.entries(value)) {
                if (Object.hasOwn(merged, k)) continue; // the first merged mapping wins
                setKey(merged, k, v);
                const p = srcLoc?.keys.get(k);
                if (p) mergedLoc.set(k, p);
              }
            }
            continue;
          }
          const k = isScalar(key) ? String(key.value) : String(convert(key));
          setKey(obj, k, convert(pair.value));
          own.add(k);
          loc.keys.set(k, posOf(key as Node));
        }
        // PyYAML's order: merged keys first (an own key overriding one keeps its place, takes its
        // value), then the mapping's other own keys.
        const result: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(merged)) {
          if (own.has(k)) {
            setKey(result, k, obj[k]);
          } else {
            setKey(result, k, v);
            const p = mergedLoc.get(k);
            if (p) loc.keys.set(k, p);
          }
        }
        for (const [k, v] of Object.entries(obj)) if (!Object.hasOwn(result, k)) setKey(result, k, v);
        locs.set(result, loc);
        cache.set(n, result);
        return result;
      }
      return null;
    } finally {
      inProgress.delete(n);
    }
  };

  const value = convert(doc.contents);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    file,
    value,
    at(container, key) {
      const loc = locs.get(container);
      if (!loc) return undefined;
      if (key === undefined) return loc.pos;
      return loc.keys.get(key) ?? loc.pos;
    },
    problem(message, container, key) {
      const p = container === undefined ? undefined : this.at(container, key);
      return p ? { file, line: p.line, column: p.column, message } : { file, message };
    },
  };
}

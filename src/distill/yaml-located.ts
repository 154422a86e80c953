/**
 * Reads an event_definitions file into plain JS values while remembering where every mapping,
 * list and key came from, so validation can report `file:line:column`.
 *
 * The YAML itself is read by the project's one positioned YAML 1.1 parser ({@link parseYaml}):
 * PyYAML's scalars, booleans and `<<` merges (own keys win, the first mapping of a merge list
 * wins), and duplicate keys as PyYAML takes them (the last value). Timestamps stay text, as
 * everywhere in the project (a JS Date would drop the microseconds). This module only turns the
 * positioned tree into plain values plus a position side-table.
 */
import { Problems } from '../config/problems.js';
import { parseYaml, type YNode } from '../config/yaml.js';
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

/**
 * Parses YAML text; throws {@link ConfigError} listing every syntax error (and bad alias or
 * merge) with its line. Warnings of the parser (duplicate keys) are not reported here.
 */
export function parseYamlLocated(text: string, file: string): LocatedYaml {
  const problems = new Problems();
  const { root } = parseYaml(text, file, problems);
  problems.throwIfAny();

  const locs = new WeakMap<object, Loc>();
  // The parser shares one node between an anchor and its aliases; so do the plain values.
  const built = new Map<YNode, unknown>();
  const toValue = (node: YNode): unknown => {
    if (node.kind === 'scalar') return node.value;
    const done = built.get(node);
    if (done !== undefined) return done;
    const loc: Loc = { pos: { ...node.pos }, keys: new Map() };
    let out: unknown[] | Record<string, unknown>;
    if (node.kind === 'seq') {
      const arr: unknown[] = [];
      node.items.forEach((item, i) => {
        arr.push(toValue(item));
        loc.keys.set(i, { ...item.pos });
      });
      out = arr;
    } else {
      const obj: Record<string, unknown> = {};
      for (const e of node.entries) {
        setKey(obj, e.key, toValue(e.value));
        loc.keys.set(e.key, { ...e.keyPos });
      }
      out = obj;
    }
    locs.set(out, loc);
    built.set(node, out);
    return out;
  };

  const value = root === null ? null : toValue(root);
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

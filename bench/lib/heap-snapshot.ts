/**
 * Summarises a V8 heap snapshot (the `.heapsnapshot` JSON that `v8.getHeapSnapshot()` streams) as self
 * size per constructor, and the difference between two summaries: which structures the memory of the
 * streams is held in. Self size only (no retained sizes: those need a dominator tree).
 */

/** The part of the snapshot format this reads. */
export interface HeapSnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: unknown[] } };
  nodes: number[];
  strings: string[];
}

/** Self bytes and object count of one constructor (or kind: `(string)`, `(array)`, `(code)`, …). */
export interface ConstructorSize {
  name: string;
  count: number;
  bytes: number;
}

/** Node kinds named after their kind rather than their (per-instance) name. */
const BY_KIND = new Set([
  'string',
  'concatenated string',
  'sliced string',
  'number',
  'code',
  'hidden',
  'array',
]);

/** Self size per constructor, largest first. */
export function summarizeHeapSnapshot(s: HeapSnapshotJson): ConstructorSize[] {
  const fields = s.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  if (stride === 0 || typeAt < 0 || nameAt < 0 || sizeAt < 0) {
    throw new Error('not a V8 heap snapshot: node_fields lacks type, name or self_size');
  }
  const types = s.snapshot.meta.node_types[typeAt];
  if (!Array.isArray(types)) throw new Error('not a V8 heap snapshot: node_types has no type names');
  const by = new Map<string, ConstructorSize>();
  const nodes = s.nodes;
  for (let i = 0; i + stride <= nodes.length; i += stride) {
    const type = String(types[nodes[i + typeAt] as number]);
    const name = BY_KIND.has(type)
      ? `(${type})`
      : type === 'object' || type === 'closure'
        ? (s.strings[nodes[i + nameAt] as number] ?? '?')
        : `(${type})`;
    const key = type === 'closure' ? `${name}()` : name;
    let e = by.get(key);
    if (e === undefined) {
      e = { name: key, count: 0, bytes: 0 };
      by.set(key, e);
    }
    e.count++;
    e.bytes += nodes[i + sizeAt] as number;
  }
  return [...by.values()].sort((a, b) => b.bytes - a.bytes);
}

/** `after − before` per constructor, largest growth first (constructors that did not grow are left out). */
export function diffHeapSummaries(
  before: readonly ConstructorSize[],
  after: readonly ConstructorSize[],
): ConstructorSize[] {
  const base = new Map(before.map((c) => [c.name, c]));
  const out: ConstructorSize[] = [];
  for (const a of after) {
    const b = base.get(a.name);
    const bytes = a.bytes - (b?.bytes ?? 0);
    if (bytes > 0) out.push({ name: a.name, count: a.count - (b?.count ?? 0), bytes });
  }
  return out.sort((x, y) => y.bytes - x.bytes);
}

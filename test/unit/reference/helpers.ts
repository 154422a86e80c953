/**
 * Shared reading of the reference fixtures (test/fixtures/reference/README.md): what the original
 * Python Winchester + stackdistiller produced for a generated workload, and how our output is
 * reduced to the same shape for comparison.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/reference/', import.meta.url));
export const CONFIG = `${FIXTURES}config/winchester.yaml`;
export const DEFINITIONS = `${FIXTURES}config/event_definitions.yaml`;

/** Parses a JSON-lines file. */
export function readJsonl(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** One closed stream, reduced to what both implementations must agree on. */
export interface ClosedStream {
  trigger: string;
  kind: 'fire' | 'expire';
  distinguished_by: Record<string, unknown>;
  message_ids: string[];
}

/** A stable identity for a closed stream (the order of streams closing in one pass is not defined by the reference). */
export function streamKey(s: ClosedStream): string {
  const dist = Object.keys(s.distinguished_by)
    .sort()
    .map((k) => [k, s.distinguished_by[k]]);
  return JSON.stringify([s.trigger, s.kind, dist, s.message_ids[0] ?? '']);
}

/** The reference's closed streams from `<name>.streams.jsonl`. */
export function referenceStreams(name: string): ClosedStream[] {
  return readJsonl(`${FIXTURES}${name}.streams.jsonl`).map((r) => ({
    trigger: r.trigger as string,
    kind: r.kind as 'fire' | 'expire',
    distinguished_by: r.distinguished_by as Record<string, unknown>,
    message_ids: r.message_ids as string[],
  }));
}

/**
 * Compares two lists of closed streams as multisets and returns human-readable differences
 * (empty when they agree): streams only one side closed, and streams both closed with different events.
 */
export function diffStreams(reference: ClosedStream[], ours: ClosedStream[]): string[] {
  const byKey = (list: ClosedStream[]) => {
    const m = new Map<string, ClosedStream[]>();
    for (const s of list) {
      const k = streamKey(s);
      m.set(k, [...(m.get(k) ?? []), s]);
    }
    return m;
  };
  const ref = byKey(reference);
  const our = byKey(ours);
  const out: string[] = [];
  for (const [k, rs] of ref) {
    const os = our.get(k) ?? [];
    if (os.length !== rs.length) {
      out.push(`reference closed ${rs.length}, we closed ${os.length}: ${k}`);
      continue;
    }
    rs.forEach((r, i) => {
      const o = os[i]!;
      if (JSON.stringify(r.message_ids) !== JSON.stringify(o.message_ids)) {
        const missing = r.message_ids.filter((m) => !o.message_ids.includes(m));
        const extra = o.message_ids.filter((m) => !r.message_ids.includes(m));
        out.push(
          `events differ for ${k}: ${r.message_ids.length} vs ${o.message_ids.length}; ` +
            `missing ${JSON.stringify(missing.slice(0, 3))}, extra ${JSON.stringify(extra.slice(0, 3))}` +
            (missing.length === 0 && extra.length === 0 ? ' (same ids, different order)' : ''),
        );
      }
    });
  }
  for (const [k, os] of our) if (!ref.has(k)) out.push(`we closed ${os.length} the reference did not: ${k}`);
  return out;
}

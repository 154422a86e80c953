/**
 * The chaos workload: a seeded notigen fleet (src/notigen) with two kinds of duplicates, as OpenStack's
 * message bus produces them: redeliveries right behind the original (the generator's `duplicates`), and
 * resends a few notifications later (a publisher that timed out and sent again).
 */
import { writeFileSync } from 'node:fs';
import { generateNotifications, Prng } from '../../src/notigen/index.js';

/** What to generate. */
export interface WorkloadOptions {
  /** Instances simulated (each yields ~30 notifications a day at notigen's default 2 operations a day). */
  readonly instances: number;
  readonly days: number;
  readonly seed: number;
  /** Chance a notification is redelivered right behind itself. */
  readonly redeliveries: number;
  /** Chance a notification is sent again 1–20 notifications later. */
  readonly resends: number;
}

/** The input, as JSON lines in sending order, and how many of them are copies. */
export interface Workload {
  readonly lines: readonly string[];
  readonly unique: number;
  readonly redelivered: number;
  readonly resent: number;
}

export function makeWorkload(o: WorkloadOptions): Workload {
  const generator = generateNotifications({
    seed: o.seed,
    instances: o.instances,
    days: o.days,
    duplicates: o.redeliveries,
  });
  const rng = new Prng(o.seed, 7);
  const lines: string[] = [];
  // Resends due at a later position of the output.
  const due = new Map<number, string[]>();
  let resent = 0;
  let position = 0;
  for (const line of generator.lines()) {
    lines.push(line);
    position++;
    for (const copy of due.get(position) ?? []) lines.push(copy);
    due.delete(position);
    if (rng.float() < o.resends) {
      const at = position + 1 + Math.floor(rng.float() * 20);
      due.set(at, [...(due.get(at) ?? []), line]);
      resent++;
    }
  }
  for (const copies of due.values()) lines.push(...copies);
  const redelivered = generator.stats.duplicates;
  return { lines, unique: lines.length - redelivered - resent, redelivered, resent };
}

/** Writes the workload as a JSON-lines file (the input of `winchester produce` and `winchester replay`). */
export function writeLines(file: string, lines: readonly string[]): void {
  writeFileSync(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

/** Cuts `lines` into `count` slices of nearly equal size, in order. */
export function slicesOf(lines: readonly string[], count: number): string[][] {
  const out: string[][] = [];
  const size = Math.ceil(lines.length / count);
  for (let i = 0; i < lines.length; i += size) out.push(lines.slice(i, i + size));
  return out;
}

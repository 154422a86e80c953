/**
 * `npm run bench`: every benchmark in turn, each in a process of its own (so one's heap and sockets do
 * not weigh on the next), then one summary table of the figures beside their baselines and targets, and
 * bench/results/suite-<time>.json with every section's results.
 *
 *   node --import tsx bench/run.ts --all [--quick]             # everything
 *   node --import tsx bench/run.ts --only latency,heap,failover [--quick]
 *
 * Sections: engine (engine core and distiller, bench/engine.ts), e2e (bench/run.ts), latency, heap,
 * failover. Sizes: the full run uses 1,000,000 notifications end to end (`--notifications` to change),
 * 100k and 1M streams for the heap, 100k streams per worker for failover; `--quick` uses small ones for
 * a sanity run. Other arguments are passed to every section (e.g. `--partitions 8`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BenchError, machine, machineLine, ROOT, say, writeResults } from './lib/harness.js';
import { fmtInt, fmtMs, fmtS, table } from './lib/output.js';

export const SECTIONS = ['engine', 'e2e', 'latency', 'heap', 'failover'] as const;
export type Section = (typeof SECTIONS)[number];

/** The sections `--all` or `--only a,b` asks for, in suite order. @throws BenchError for an unknown name. */
export function parseSections(argv: readonly string[]): Section[] {
  const i = argv.indexOf('--only');
  if (i < 0) {
    if (argv.includes('--all')) return [...SECTIONS];
    throw new BenchError(
      'say which benchmarks: --all, or --only with a comma-separated list of ' + SECTIONS.join(', '),
    );
  }
  const names = (argv[i + 1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0)
    throw new BenchError(`--only needs a comma-separated list of ${SECTIONS.join(', ')}`);
  for (const n of names) {
    if (!(SECTIONS as readonly string[]).includes(n))
      throw new BenchError(`unknown benchmark ${JSON.stringify(n)}: choose from ${SECTIONS.join(', ')}`);
  }
  return SECTIONS.filter((s) => names.includes(s));
}

/** The arguments a section's own script gets: the suite's minus --all/--only, plus its size for --quick or full. */
export function sectionArgs(section: Section, argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--all') continue;
    if (a === '--only') {
      i++;
      continue;
    }
    out.push(a);
  }
  const quick = out.includes('--quick');
  const has = (name: string) => out.includes(`--${name}`);
  if (section === 'engine') {
    // engine.ts takes only its own options.
    const own: string[] = [];
    if (quick) own.push('--instances', '300', '--runs', '1', '--streams', '20000');
    return own;
  }
  if (section === 'e2e') {
    const e = out.filter((a) => a !== '--quick');
    if (!has('notifications')) e.push('--notifications', quick ? '20000' : '1000000');
    if (quick && !e.includes('--no-profile')) e.push('--no-profile');
    return e;
  }
  return out;
}

const SCRIPTS: Record<Section, string> = {
  engine: 'bench/engine.ts',
  e2e: 'bench/run.ts',
  latency: 'bench/latency.ts',
  heap: 'bench/heap.ts',
  failover: 'bench/failover.ts',
};

/** Runs one section's script, echoing its output; resolves to its results file (its `results:` line). */
function runSection(section: Section, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${ROOT}${SCRIPTS[section]}`, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let tail = '';
    child.stdout.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      process.stdout.write(text);
      tail = (tail + text).slice(-4000);
    });
    child.on('exit', (code) => {
      const m = /results: (\S+\.json)/.exec(tail);
      if (code === 0 && m?.[1] !== undefined) resolve(m[1]);
      else reject(new BenchError(`the ${section} benchmark failed (exit ${code})`));
    });
  });
}

// biome-ignore lint/suspicious/noExplicitAny: results files are read back as their scripts wrote them
type Json = Record<string, any>;

/** The summary rows (measure, figure, baseline, ratio or target) of the sections' results. */
export function summaryRows(results: Partial<Record<Section, Json>>): string[][] {
  const rows: string[][] = [];
  const e = results.engine;
  if (e !== undefined) {
    const base = e.engine?.[0];
    const pre = e.engine?.[2];
    if (base !== undefined && pre !== undefined) {
      rows.push([
        'engine core (pre-routed), events/s per core',
        fmtInt(pre.perSecondCpu),
        `JSON.parse ${fmtInt(base.perSecondCpu)}`,
        `${(pre.perSecondCpu / base.perSecondCpu).toFixed(2)}×`,
        pre.perSecondCpu >= 250_000 ? 'meets ≥ 250,000' : 'below 250,000',
      ]);
    }
    const dBase = e.distiller?.[0];
    const d = e.distiller?.[1];
    if (dBase !== undefined && d !== undefined) {
      rows.push([
        'distiller, notifications/s per core',
        fmtInt(d.perSecondCpu),
        `JSON.parse ${fmtInt(dBase.perSecondCpu)}`,
        `${(d.perSecondCpu / dBase.perSecondCpu).toFixed(2)}×`,
        '',
      ]);
    }
  }
  const x = results.e2e;
  if (x !== undefined) {
    rows.push([
      'end to end, notifications/s',
      fmtInt(x.endToEnd.perSecond),
      `raw consume ${fmtInt(x.raw.perSecond)}`,
      `${(x.ratio * 100).toFixed(0)}%`,
      x.endToEnd.perSecond >= 20_000 && x.ratio >= 0.5
        ? 'meets ≥ 20,000 and ≥ 50%'
        : 'below ≥ 20,000 / ≥ 50%',
    ]);
  }
  const l = results.latency?.latency;
  if (l !== undefined) {
    rows.push([
      `fire latency at ${fmtInt(l.achievedRate)}/s (${Math.round(l.load * 100)}% of ${fmtInt(l.maxRate.perSecond)}/s), p50 / p99`,
      `${fmtMs(l.endToEnd.p50)} / ${fmtMs(l.endToEnd.p99)}`,
      `worker histogram ${fmtMs(l.workerHistogram.p50)} / ${fmtMs(l.workerHistogram.p99)}`,
      '',
      l.endToEnd.p99 !== null && l.endToEnd.p99 <= 1 ? 'meets p99 ≤ 1 s' : 'over p99 ≤ 1 s',
    ]);
  }
  const h = results.heap?.heap;
  if (h !== undefined) {
    for (const p of h.points) {
      rows.push([
        `heap per active stream at ${fmtInt(p.streams)} streams`,
        `${fmtInt(p.bytesPerStream)} B`,
        `0 streams: ${fmtInt(h.baseline.heapUsed / 2 ** 20)} MiB`,
        '',
        p.bytesPerStream <= 500 ? 'meets ≤ 500 B' : 'over 500 B',
      ]);
    }
  }
  const f = results.failover?.failover;
  if (f !== undefined) {
    for (const c of f.cases) {
      rows.push([
        `failover, ${c.name} (${fmtInt(c.victimStreams)} streams)`,
        fmtS(c.recovered),
        `detect ${fmtS(c.detected)}, rebalance ${fmtS(c.rejoined - c.detected)}, restore ${fmtS(c.recovered - c.rejoined)}`,
        '',
        c.recovered !== null && c.recovered <= 5 ? 'meets ≤ 5 s' : 'over 5 s',
      ]);
    }
  }
  return rows;
}

export async function runSuite(argv: readonly string[]): Promise<void> {
  const sections = parseSections(argv);
  say(`benchmarks: ${sections.join(', ')}${argv.includes('--quick') ? ' (quick sizes)' : ''}`);
  say(machineLine());
  const results: Partial<Record<Section, Json>> = {};
  const files: Partial<Record<Section, string>> = {};
  const failed: Section[] = [];
  for (const s of sections) {
    try {
      const file = await runSection(s, sectionArgs(s, argv));
      files[s] = file;
      results[s] = JSON.parse(readFileSync(`${ROOT}${file}`, 'utf8')) as Json;
    } catch (error) {
      // One failed section must not hide the others' figures.
      say(`bench: ${(error as Error).message}`);
      failed.push(s);
    }
  }
  say('\n== summary');
  say(
    table(
      ['measure', 'figure', 'baseline (same run)', 'ratio', 'target'],
      summaryRows(results),
      new Set([1]),
    ),
  );
  const out = writeResults('suite', {
    date: new Date().toISOString(),
    machine: machine(),
    argv,
    files,
    failed,
    results,
  });
  say(`\nresults: ${out}`);
  if (failed.length > 0) throw new BenchError(`failed: ${failed.join(', ')}`);
}

/**
 * `npm run test:hostile [-- --size N] [--seed S] [--json FILE] [--include-known-bugs]`: the hostile-input suite at full size (default
 * 100,000 inputs) against the running Kafka and PostgreSQL (`npm run infra:up`). Prints the figures; exits 1
 * when the worker crashed, lost or miscounted an input, 2 on a usage error.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, runHostile } from './suite.js';

function usage(message: string): never {
  process.stderr.write(
    `test:hostile: ${message}\nusage: npm run test:hostile -- [--size N] [--seed S] [--json FILE] [--include-known-bugs]\n`,
  );
  process.exit(2);
}

let values: { size?: string; seed?: string; json?: string; 'include-known-bugs'?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      size: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'string' },
      'include-known-bugs': { type: 'boolean' },
    },
    strict: true,
  }));
} catch (err) {
  usage((err as Error).message);
}
const size = Number(values.size ?? '100000');
const seed = Number(values.seed ?? '1');
if (!Number.isSafeInteger(size) || size < 1) usage(`--size must be a positive integer, not ${values.size}`);
if (!Number.isSafeInteger(seed)) usage(`--seed must be an integer, not ${values.seed}`);

// The addresses `npm run infra:up` recorded, unless the caller set them (as scripts/test.mjs does).
const infraEnv = new URL('../../.infra/env', import.meta.url).pathname;
if (existsSync(infraEnv)) {
  for (const line of readFileSync(infraEnv, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m && process.env[m[1] as string] === undefined) process.env[m[1] as string] = m[2];
  }
}

// Clean-up in registration order, as node:test runs after-hooks.
const cleanups: (() => unknown)[] = [];
const scope = { after: (fn: () => unknown) => void cleanups.push(fn) };
let code = 1;
try {
  const report = await runHostile(scope, {
    size,
    seed,
    includeKnownBugs: values['include-known-bugs'] === true,
    progress: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  code = report.problems.length === 0 ? 0 : 1;
} catch (err) {
  process.stderr.write(`test:hostile: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  for (const fn of cleanups) {
    try {
      await fn();
    } catch {
      // clean-up is best effort: a failed topic deletion must not hide the verdict
    }
  }
}
process.exit(code);

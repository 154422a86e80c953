#!/usr/bin/env node
// Runs the test suite with node's built-in test runner (TypeScript through tsx).
// Usage: node scripts/test.mjs [unit|integration|all] [extra node --test flags]
// Integration tests need Kafka and Postgres (`npm run infra:up`); the environment variables
// KAFKA_BROKERS and DATABASE_URL (or .infra/env written by infra:up) tell them where; SCHEMA_REGISTRY_URL
// (or .infra/registry.env written by scripts/registry.sh up) points the Avro tests at a real registry.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const suite = ['unit', 'integration', 'all'].includes(args[0] ?? '') ? args.shift() : 'all';
const dirs = suite === 'all' ? ['test/unit', 'test/integration'] : [`test/${suite}`];

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.test\.ts$/.test(name)) out.push(relative(root, p));
  }
  return out;
}

const files = dirs.flatMap((d) => walk(join(root, d), []));
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}`);
  process.exit(1);
}

// Pick up the addresses that `npm run infra:up` (env) and `scripts/registry.sh up` (registry.env:
// SCHEMA_REGISTRY_URL, else the Avro tests use an in-test registry) recorded, unless the caller set them.
const env = { ...process.env };
const infraDir = process.env.INFRA_DIR || join(root, '.infra');
for (const file of ['env', 'registry.env']) {
  const path = join(infraDir, file);
  if (!existsSync(path)) continue;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m && env[m[1]] === undefined) env[m[1]] = m[2];
  }
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  // --test-force-exit: a test file whose tests have all finished ends even if a client library left a
  // socket or timer behind (kafkajs occasionally keeps a broker connection), so one leak cannot hang CI.
  // Worker processes themselves are tested to exit on SIGTERM in their own child processes.
  ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, ...args, ...files],
  { cwd: root, env, stdio: 'inherit' },
);
process.exit(result.status ?? 1);

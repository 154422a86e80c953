/**
 * scripts/infra.sh in bad environments: each run uses its own empty state directory (INFRA_DIR) and fails
 * in the pre-flight checks, so these tests are fast and never touch the services other tests use.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../helpers/process.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SCRIPT = join(ROOT, 'scripts', 'infra.sh');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runInfra(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A scratch directory removed when the test ends. */
function scratch(t: { after(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'infra-test-'));
  // mkdtemp makes it private; the private PostgreSQL cluster runs as the 'postgres' user and must get in.
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A PATH holding every command of the current PATH except `omit`, optionally with replacements
 * (`fakes`: name → shell script body), to simulate a machine lacking or breaking one tool.
 */
function pathWithout(dir: string, omit: string[], fakes: Record<string, string> = {}): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const source of (process.env.PATH ?? '').split(delimiter).filter((p) => p !== '')) {
    let names: string[];
    try {
      names = readdirSync(source);
    } catch {
      continue;
    }
    for (const name of names) {
      if (omit.includes(name) || name in fakes) continue;
      try {
        symlinkSync(join(source, name), join(bin, name));
      } catch {
        // An earlier PATH entry already provided this name, exactly as the shell would resolve it.
      }
    }
  }
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

/** The environment for one run: isolated state, no inherited service addresses or JAVA_HOME. */
function baseEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, INFRA_DIR: join(dir, 'state'), INFRA_READY_TIMEOUT: '2' };
  delete env.KAFKA_BROKERS;
  delete env.DATABASE_URL;
  delete env.JAVA_HOME;
  delete env.PG_BIN_DIR;
  return { ...env, ...extra };
}

async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

function assertCleanFailure(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 1, `exit status 1 expected; stderr:\n${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /^\s+at \S+ \(/m, 'no stack trace');
}

describe('scripts/infra.sh explains what is wrong', { timeout: 60_000 }, () => {
  test('without Java it names the missing runtime and the KAFKA_BROKERS alternative', async (t) => {
    const dir = scratch(t);
    const env = baseEnv(dir, {
      PATH: pathWithout(dir, ['java']),
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/x',
    });
    const run = await runInfra(['up'], env);
    assertCleanFailure(run, /error: Java not found .*Java 17 runtime.*KAFKA_BROKERS/);
  });

  test('when Kafka’s port is taken it names the port and the process holding it', async (t) => {
    const dir = scratch(t);
    const { server, port } = await listen();
    t.after(() => server.close());
    const controller = await freePort();
    const env = baseEnv(dir, {
      INFRA_KAFKA_PORT: String(port),
      INFRA_KAFKA_CONTROLLER_PORT: String(controller),
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/x',
    });
    const run = await runInfra(['up'], env);
    assertCleanFailure(
      run,
      new RegExp(
        `port ${port} \\(needed for Kafka's client listener\\) is already in use by pid ${process.pid} \\(`,
      ),
    );
    assert.match(run.stderr, /INFRA_KAFKA_PORT=<port>/, 'says how to choose another port');
  });

  test('when PostgreSQL’s port is taken it names the port and the process holding it', async (t) => {
    const dir = scratch(t);
    const { server, port } = await listen();
    t.after(() => server.close());
    const env = baseEnv(dir, { INFRA_PG_PORT: String(port), KAFKA_BROKERS: '127.0.0.1:1' });
    const run = await runInfra(['up'], env);
    assertCleanFailure(
      run,
      new RegExp(`port ${port} \\(needed for PostgreSQL\\) is already in use by pid ${process.pid} `),
    );
  });

  test('without Maven and without cached jars it says Maven is needed once', async (t) => {
    const dir = scratch(t);
    const env = baseEnv(dir, {
      PATH: pathWithout(dir, ['mvn']),
      KAFKA_CACHE_DIR: join(dir, 'cache'),
      INFRA_KAFKA_PORT: String(await freePort()),
      INFRA_KAFKA_CONTROLLER_PORT: String(await freePort()),
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/x',
    });
    const run = await runInfra(['up'], env);
    assertCleanFailure(run, /error: Maven \(mvn\) not found on PATH: it is needed once to fetch Kafka/);
  });

  test('when Maven cannot reach the repository it says what could not be fetched', async (t) => {
    const dir = scratch(t);
    const env = baseEnv(dir, {
      // A stand-in for Maven on a machine without network: fails the way Maven does.
      PATH: pathWithout(dir, [], {
        mvn: "echo '[ERROR] Failed to execute goal: Could not transfer artifact org.apache.kafka:kafka_2.13:pom: Connection refused'; exit 1",
      }),
      KAFKA_CACHE_DIR: join(dir, 'cache'),
      INFRA_KAFKA_PORT: String(await freePort()),
      INFRA_KAFKA_CONTROLLER_PORT: String(await freePort()),
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/x',
    });
    const run = await runInfra(['up'], env);
    assertCleanFailure(
      run,
      /error: Maven could not fetch org\.apache\.kafka:kafka_2\.13:\S+ .*Maven Central reachable/,
    );
    assert.match(run.stderr, /maven: .*Connection refused/, 'quotes Maven’s own reason');
  });

  test('without PostgreSQL’s server programs it says what to install or set', async (t) => {
    const dir = scratch(t);
    const env = baseEnv(dir, { PG_BIN_DIR: join(dir, 'no-such-postgres'), KAFKA_BROKERS: '127.0.0.1:1' });
    const run = await runInfra(['up'], env);
    assertCleanFailure(
      run,
      /error: PostgreSQL server programs not found .*apt-get install postgresql-15.*DATABASE_URL/,
    );
  });

  test('an unreachable DATABASE_URL fails within the readiness timeout, password not shown', async (t) => {
    const dir = scratch(t);
    const port = await freePort();
    const env = baseEnv(dir, {
      DATABASE_URL: `postgres://someone:s3cret@127.0.0.1:${port}/nowhere`,
      KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
    });
    const started = Date.now();
    const run = await runInfra(['up'], env);
    assertCleanFailure(run, /error: PostgreSQL at DATABASE_URL does not answer/);
    assert.match(run.stderr, new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch(run.stderr, /s3cret/);
    assert.ok(Date.now() - started < 20_000, 'gives up after INFRA_READY_TIMEOUT, not minutes');
  });

  test('status reports stopped services and exits non-zero', async (t) => {
    const dir = scratch(t);
    const run = await runInfra(['status'], baseEnv(dir));
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^kafka\s+stopped$/m);
    assert.match(run.stdout, /^postgres\s+stopped$/m);
  });

  test('down ignores a stale PID file whose pid now belongs to another process', async (t) => {
    const dir = scratch(t);
    const kafkaDir = join(dir, 'state', 'kafka');
    mkdirSync(kafkaDir, { recursive: true });
    // After a crash the recorded pid may be reused; this test process stands in for the unrelated one.
    writeFileSync(join(kafkaDir, 'kafka.pid'), `${process.pid}\n`);
    const run = await runInfra(['down'], baseEnv(dir, { DATABASE_URL: 'postgres://unused@127.0.0.1:1/x' }));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Kafka not running/);
    assert.deepEqual(readdirSync(kafkaDir), [], 'the stale PID file is removed');
  });

  test('an unknown command prints usage and exits 2', async (t) => {
    const run = await runInfra(['sideways'], baseEnv(scratch(t)));
    assert.equal(run.code, 2);
    assert.match(run.stderr, /usage: .* up\|down \[--purge\]\|status/);
  });
});

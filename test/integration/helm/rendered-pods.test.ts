// The chart's pods, run for real: the migration Job and both worker Deployments are rendered by helm, and
// each container's args and environment (Secret references resolved from the rendered Secret, the rendered
// ConfigMap written to a directory that stands in for the /etc/winchester mount) start a winchester process
// against the test Kafka and PostgreSQL. Nothing else of the caller's environment reaches it, so this proves
// the chart's wiring: the variable names, the config files, the probe paths and port, and a graceful SIGTERM.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { sql } from '../../../src/db/pool.js';
import { testDatabase } from '../../helpers/db.js';
import { kafkaBrokers, type TestScope, uniqueName } from '../../helpers/integration.js';
import { testKafka } from '../../helpers/kafka.js';
import { startFakeRegistry } from '../../unit/serde/fake-registry.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chart = join(root, 'helm/winchester');
const main = join(root, 'src/main.ts');
// The CLI from the sources (what bin/winchester.js runs from dist/ in the image): argv[1] is main.ts.
const launcher =
  'const { main } = await import(process.argv[1]); process.exitCode = await main(process.argv.slice(2));';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped trees navigated by path
type Manifest = Record<string, any>;

function helmBinary(): string {
  const r = spawnSync('bash', [join(root, 'scripts/helm.sh')], { encoding: 'utf8', timeout: 30 * 60_000 });
  assert.equal(r.status, 0, `scripts/helm.sh could not provide helm:\n${r.stderr}`);
  return r.stdout.trim();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function render(helm: string, values: Record<string, unknown>): Manifest[] {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-pods-values-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    const r = spawnSync(helm, ['template', 'it', chart, '--namespace', 'it', '-f', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: join(dir, 'none') },
    });
    assert.equal(r.status, 0, r.stderr);
    return parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Manifest | null)
      .filter((d): d is Manifest => d !== null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function find(docs: Manifest[], kind: string, name: string): Manifest {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(d, `no ${kind}/${name}`);
  return d;
}

interface Pod {
  args: string[];
  env: Record<string, string>;
  probes: { liveness: string; readiness: string; port: number };
  grace: number;
}

/**
 * What the kubelet would give the first container of a pod template: args, and env with secretKeyRefs
 * resolved; `/etc/winchester` (the ConfigMap mount) becomes `configDir`, holding the ConfigMap's files.
 */
function podOf(docs: Manifest[], workload: Manifest, configDir: string): Pod {
  const spec = workload.spec.template.spec;
  const [c] = spec.containers;
  const configMap = find(
    docs,
    'ConfigMap',
    spec.volumes.find((v: Manifest) => v.name === 'config').configMap.name,
  );
  mkdirSync(configDir, { recursive: true });
  for (const [name, text] of Object.entries(configMap.data as Record<string, string>)) {
    writeFileSync(join(configDir, name), `${text}\n`);
  }
  const mount = (s: string) => s.replaceAll('/etc/winchester/', `${configDir}/`);
  const env: Record<string, string> = {};
  for (const e of c.env as Manifest[]) {
    if (e.value !== undefined) env[e.name] = mount(String(e.value));
    else if (e.valueFrom?.secretKeyRef) {
      const secret = find(docs, 'Secret', e.valueFrom.secretKeyRef.name);
      env[e.name] = secret.stringData[e.valueFrom.secretKeyRef.key];
    } else assert.fail(`unexpected env source for ${e.name}`);
  }
  const port = (name: unknown) =>
    typeof name === 'number' ? name : c.ports.find((p: Manifest) => p.name === name).containerPort;
  return {
    args: (c.args as string[]).map(mount),
    env,
    probes: {
      liveness: c.livenessProbe?.httpGet.path,
      readiness: c.readinessProbe?.httpGet.path,
      port: c.readinessProbe ? port(c.readinessProbe.httpGet.port) : 0,
    },
    grace: spec.terminationGracePeriodSeconds ?? 30,
  };
}

/** A winchester process: its output, and its exit status (null when a signal ended it). */
class Proc {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
    });
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
    });
    this.exited = once(child, 'exit').then(([code, signal]) => (signal === null ? (code as number) : null));
  }

  /** SIGTERM, then SIGKILL after `graceMs`, as the kubelet does; the exit status. */
  async terminate(graceMs: number): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  tail(): string {
    return `stdout: ${this.stdout.slice(-1500)}\nstderr: ${this.stderr.slice(-1500)}`;
  }
}

function run(t: TestScope, pod: Pod): Proc {
  // Only the pod's environment (and PATH for node): the chart must provide everything the process needs.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', launcher, main, ...pod.args],
    {
      cwd: root,
      env: { PATH: process.env.PATH, ...pod.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const p = new Proc(child);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await p.exited;
  });
  return p;
}

async function probe(port: number, path: string): Promise<number> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

async function untilReady(p: Proc, pod: Pod, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) break;
    last = await probe(pod.probes.port, pod.probes.readiness);
    if (last === 200) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail(
    `${pod.args[0]} not ready on :${pod.probes.port}${pod.probes.readiness} (last status ${last}, exit ${p.child.exitCode})\n${p.tail()}`,
  );
}

/**
 * A fresh database, unique topics and consumer groups, and the chart rendered for them with the metrics
 * port `port`; then the rendered migration Job runs, as Helm's pre-install hook would before the workers.
 */
async function installed(
  t: TestScope,
  dir: string,
  values: Record<string, unknown> = {},
): Promise<{ docs: Manifest[]; port: number }> {
  const helm = helmBinary();
  const db = await testDatabase(t, 'helm_pods');
  const clientId = uniqueName('it-helm');
  const topics = {
    WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: `${clientId}.notifications`,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: `${clientId}.stream-events`,
    WINCHESTER_KAFKA_TOPICS_BATCHES: `${clientId}.batches`,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: `${clientId}.dead-letter`,
  };
  const admin = testKafka('it-helm-pods').admin();
  await admin.connect();
  t.after(async () => {
    await admin.deleteTopics({ topics: Object.values(topics), timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
  });
  const port = await freePort();
  const docs = render(helm, {
    database: { url: db.url },
    kafka: { brokers: kafkaBrokers().split(','), clientId },
    metrics: { port },
    // Two partitions keep the test's topics cheap; the topic names keep it apart from everything else.
    extraEnv: [
      { name: 'WINCHESTER_KAFKA_PARTITIONS', value: '2' },
      ...Object.entries(topics).map(([name, value]) => ({ name, value })),
    ],
    ...values,
  });

  // The migration Job, with its hook Secret and ConfigMap.
  const job = podOf(docs, find(docs, 'Job', 'it-winchester-migrate'), join(dir, 'migrate'));
  const migrate = run(t, job);
  const code = await migrate.exited;
  assert.equal(code, 0, `migration failed\n${migrate.tail()}`);
  assert.match(migrate.stdout, /database schema upgraded to version \d+/);
  const applied = await db.pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM schema_migrations`);
  assert.ok(Number(applied) > 0, 'migrations recorded');
  return { docs, port };
}

function tempDir(t: TestScope): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-pods-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the rendered migration Job upgrades a fresh database with the hook Secret and ConfigMap', {
  timeout: 120_000,
}, async (t) => {
  await installed(t, tempDir(t));
});

for (const component of ['trigger-worker', 'pipeline-worker']) {
  test(`the rendered ${component} pod becomes ready on its probes and stops gracefully on SIGTERM`, {
    timeout: 240_000,
  }, async (t) => {
    const dir = tempDir(t);
    const { docs } = await installed(t, dir);
    const name = `it-winchester-${component}`;
    const pod = podOf(docs, find(docs, 'Deployment', name), join(dir, name));
    const p = run(t, pod);
    await untilReady(p, pod, 90_000);
    assert.equal(await probe(pod.probes.port, pod.probes.liveness), 200, `${name} liveness`);
    const metrics = await (await fetch(`http://127.0.0.1:${pod.probes.port}/metrics`)).text();
    assert.match(metrics, /^winchester_/m, `${name} serves winchester metrics`);
    const started = Date.now();
    const exit = await p.terminate(pod.grace * 1000);
    assert.equal(exit, 0, `${name} exit after SIGTERM\n${p.tail()}`);
    assert.ok(
      Date.now() - started < pod.grace * 1000,
      `${name} stopped within terminationGracePeriodSeconds`,
    );
  });
}

test('with schemaRegistry (basic auth from the Secret) the rendered trigger-worker pod registers its schemas and becomes ready', {
  timeout: 240_000,
}, async (t) => {
  // The stand-in registry, because it can insist on the credentials: the pod only gets in with the
  // Secret's username and password reaching it as WINCHESTER_SCHEMA_REGISTRY_USERNAME / _PASSWORD.
  const registry = await startFakeRegistry({ auth: { username: 'chart-user', password: 'chart-pw' } });
  t.after(() => registry.close());
  const dir = tempDir(t);
  const { docs } = await installed(t, dir, {
    schemaRegistry: { url: registry.url, basicAuth: true, username: 'chart-user', password: 'chart-pw' },
  });
  const name = 'it-winchester-trigger-worker';
  const pod = podOf(docs, find(docs, 'Deployment', name), join(dir, name));
  const p = run(t, pod);
  await untilReady(p, pod, 90_000);
  assert.match(p.stdout, /"msg":"schema registry: internal topics carry Avro"/);
  assert.ok(registry.requests.some((r) => /^POST \/subjects\/.*stream-events-value\/versions$/.test(r)));
  assert.equal(await p.terminate(pod.grace * 1000), 0, p.tail());
});

/**
 * A private Kafka broker and PostgreSQL server for the chaos suite, started with scripts/infra.sh in a
 * temporary INFRA_DIR on ports of their own, because the suite restarts them: the shared services
 * (127.0.0.1:19092, :54329) that other tests use are never touched.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, pidAlive, runScript } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The suite's callers (and test/integration/worker/private-kafka.ts) take the port helper from here.
export { freePort };

/** Sends `signal`, waits up to `graceMs` for the process to go, then SIGKILL. */
async function stopPid(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  while (pidAlive(pid)) await sleep(50);
}

/** How a Postgres restart stops the server: `fast` (SIGINT, clean) or `immediate` (SIGQUIT, crash recovery). */
export type PostgresStop = 'fast' | 'immediate';

/** The private services; {@link PrivateInfra.start} returns one that is up. */
export class PrivateInfra {
  /** Seconds each restart kept its service down and then took to be ready again. */
  readonly restarts: { service: 'kafka' | 'postgres'; downMs: number; upMs: number }[] = [];

  private constructor(
    readonly dir: string,
    readonly kafkaPort: number,
    readonly controllerPort: number,
    readonly pgPort: number,
    private readonly log: (line: string) => void,
  ) {}

  get kafkaBrokers(): string {
    return `127.0.0.1:${this.kafkaPort}`;
  }

  get databaseUrl(): string {
    return `postgres://winchester:winchester@127.0.0.1:${this.pgPort}/winchester`;
  }

  /**
   * Starts Kafka and PostgreSQL in a fresh temporary directory. On failure everything started is torn
   * down before the error is thrown.
   */
  static async start(log: (line: string) => void): Promise<PrivateInfra> {
    const dir = mkdtempSync(join(tmpdir(), 'winchester-chaos-infra-'));
    // As root the cluster runs as 'postgres', which must be able to enter this directory.
    chmodSync(dir, 0o755);
    const infra = new PrivateInfra(dir, await freePort(), await freePort(), await freePort(), log);
    // If the process ends before destroy() (a test timeout, Ctrl-C), the services must not outlive it.
    process.on('exit', infra.exitHook);
    try {
      await infra.script('up');
    } catch (error) {
      await infra.destroy();
      throw error;
    }
    return infra;
  }

  /** Stops the broker (SIGTERM, as a rolling restart does), keeps it down `downMs`, starts it again. */
  async restartKafka(downMs: number): Promise<void> {
    const pid = Number(readFileSync(join(this.dir, 'kafka', 'kafka.pid'), 'utf8').trim());
    const started = Date.now();
    await stopPid(pid, 'SIGTERM', 30_000);
    await sleep(downMs);
    const down = Date.now();
    await this.script('up');
    this.restarts.push({ service: 'kafka', downMs: down - started, upMs: Date.now() - down });
  }

  /** Stops PostgreSQL (`immediate`: a crash, recovered on start), keeps it down `downMs`, starts it again. */
  async restartPostgres(downMs: number, how: PostgresStop): Promise<void> {
    const pidFile = join(this.dir, 'postgres', 'data', 'postmaster.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    const started = Date.now();
    await stopPid(pid, how === 'fast' ? 'SIGINT' : 'SIGQUIT', 30_000);
    await sleep(downMs);
    const down = Date.now();
    await this.script('up');
    this.restarts.push({ service: 'postgres', downMs: down - started, upMs: Date.now() - down });
  }

  private readonly exitHook = (): void => {
    spawnSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'down', '--purge'], {
      env: this.env(),
      stdio: 'ignore',
    });
    rmSync(this.dir, { recursive: true, force: true });
  };

  /** Stops both services and deletes their data; never throws (it runs in `finally`). */
  async destroy(): Promise<void> {
    process.off('exit', this.exitHook);
    await this.script('down', '--purge').catch((error: Error) =>
      this.log(`infra down failed: ${error.message}`),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The environment of scripts/infra.sh: this instance's directory and ports, never the caller's services. */
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INFRA_DIR: this.dir,
      INFRA_KAFKA_PORT: String(this.kafkaPort),
      INFRA_KAFKA_CONTROLLER_PORT: String(this.controllerPort),
      INFRA_PG_PORT: String(this.pgPort),
      INFRA_KAFKA_HEAP: process.env.INFRA_KAFKA_HEAP ?? '384m',
    };
    // Set, these would make infra.sh check the shared services instead of starting private ones.
    delete env.KAFKA_BROKERS;
    delete env.DATABASE_URL;
    return env;
  }

  /** Runs scripts/infra.sh with this instance's directory and ports (and never the caller's services). */
  private async script(...args: string[]): Promise<void> {
    const { code, output } = await runScript('infra.sh', args, this.env());
    if (code !== 0) throw new Error(`scripts/infra.sh ${args.join(' ')} exited ${code}:\n${output.trim()}`);
  }
}

/**
 * A private Kafka broker for tests that stop and restart it: scripts/infra.sh in a temporary INFRA_DIR on
 * ports of its own. PostgreSQL is the shared one (DATABASE_URL is passed, so infra.sh only checks it and
 * never starts, stops or purges it); the shared broker (127.0.0.1:19092) is never touched.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, pidAlive, runScript } from '../../helpers/process.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** A running private broker; {@link PrivateKafka.start} returns one that answers. */
export class PrivateKafka {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly controllerPort: number,
    private readonly databaseUrl: string,
  ) {}

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts a broker in a fresh directory; `databaseUrl` is the (shared) PostgreSQL infra.sh only checks. */
  static async start(databaseUrl: string): Promise<PrivateKafka> {
    const dir = mkdtempSync(join(tmpdir(), 'winchester-private-kafka-'));
    const kafka = new PrivateKafka(dir, await freePort(), await freePort(), databaseUrl);
    process.on('exit', kafka.exitHook);
    try {
      await kafka.script('up');
    } catch (error) {
      await kafka.destroy();
      throw error;
    }
    return kafka;
  }

  /** Stops the broker the way a rolling restart does (SIGTERM, SIGKILL after 30 s). */
  async stop(): Promise<void> {
    const pid = Number(readFileSync(join(this.dir, 'kafka', 'kafka.pid'), 'utf8').trim());
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + 30_000;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    while (pidAlive(pid)) await sleep(50);
  }

  /** Starts the stopped broker again (same data) and waits until it answers. */
  async up(): Promise<void> {
    await this.script('up');
  }

  /** Stops the broker and deletes its data; never throws. */
  async destroy(): Promise<void> {
    process.off('exit', this.exitHook);
    await this.script('down', '--purge').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private readonly exitHook = (): void => {
    spawnSync('bash', [join(ROOT, 'scripts', 'infra.sh'), 'down', '--purge'], {
      env: this.env(),
      stdio: 'ignore',
    });
    rmSync(this.dir, { recursive: true, force: true });
  };

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INFRA_DIR: this.dir,
      INFRA_KAFKA_PORT: String(this.port),
      INFRA_KAFKA_CONTROLLER_PORT: String(this.controllerPort),
      INFRA_KAFKA_HEAP: process.env.INFRA_KAFKA_HEAP ?? '384m',
      // Set: infra.sh checks this server and never starts or stops a PostgreSQL of its own.
      DATABASE_URL: this.databaseUrl,
    };
    delete env.KAFKA_BROKERS;
    return env;
  }

  private async script(...args: string[]): Promise<void> {
    const { code, output } = await runScript('infra.sh', args, this.env());
    if (code !== 0) throw new Error(`scripts/infra.sh ${args.join(' ')} exited ${code}:\n${output.trim()}`);
  }
}

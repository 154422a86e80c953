/**
 * The worker processes of a chaos run: `winchester trigger-worker -c …` and `winchester pipeline-worker
 * -c …`, the real CLI from the sources, each in its own process with its stdout and stderr in a log file.
 * A slot holds one worker at a time; a killed worker is replaced in its slot at once. A worker that exits
 * without being told to (a crash, a fatal stop on a broker or database restart) is recorded as a problem,
 * and replaced too so the run can go on and show everything else.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = fileURLToPath(new URL('../helpers/winchester-entry.ts', import.meta.url));

export type WorkerKind = 'trigger' | 'pipeline';

/** The log line (as it appears in the JSON) a worker writes once it runs. */
const RUNNING: Record<WorkerKind, string> = {
  trigger: '"trigger worker running"',
  pipeline: '"pipeline worker running"',
};
/** How long after a restarted service answers again a worker's failed start is still put down to it. */
const OUTAGE_GRACE_MS = 30_000;

/** A worker that stopped without being told to. */
export interface UnexpectedExit {
  readonly kind: WorkerKind;
  readonly pid: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly log: string;
  /** Its last stderr/stdout lines. */
  readonly tail: string;
}

interface Worker {
  readonly kind: WorkerKind;
  readonly slot: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Set before the suite kills or stops it, so its exit is not taken for a crash. */
  expected: boolean;
}

/** What the fleet did, for the report. */
export interface FleetFigures {
  kills: { trigger: number; pipeline: number; pipelineInCommitWindow: number };
  started: number;
  /** Pids the suite SIGKILLed (a commit() repeated after one of them died is the documented window). */
  killedPids: Set<number>;
  unexpectedExits: UnexpectedExit[];
  /**
   * Workers that exited 1 during start-up while Kafka or PostgreSQL was down (or had just come back):
   * the documented behaviour ("exit 1 when Kafka or PostgreSQL cannot be used"); replaced, as a supervisor
   * would.
   */
  startFailuresInOutage: number;
  /** Exit statuses of the graceful stop at the end (all should be 0). */
  stopStatuses: { kind: WorkerKind; pid: number; code: number | null; signal: string | null }[];
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class WorkerFleet {
  readonly figures: FleetFigures = {
    kills: { trigger: 0, pipeline: 0, pipelineInCommitWindow: 0 },
    started: 0,
    killedPids: new Set(),
    unexpectedExits: [],
    startFailuresInOutage: 0,
    stopStatuses: [],
  };
  /** Set while a service is being restarted, and until `OUTAGE_GRACE_MS` after it answers again. */
  private outageUntil = 0;
  private readonly workers = new Map<string, Worker>();
  private stopping = false;
  private replacing: Promise<unknown>[] = [];

  /**
   * @param configFile winchester.yaml of the workers
   * @param env the environment pointing them at the private services
   * @param logDir where each process's log goes (`<n>-<kind>-<slot>.log`, n in start order)
   * @param recorderDir the recording handler's directory (its `die/` files arm a commit-window kill)
   * @param random the run's seeded random source (which worker to kill)
   */
  constructor(
    private readonly configFile: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    private readonly recorderDir: string,
    private readonly random: () => number,
  ) {
    mkdirSync(logDir, { recursive: true });
    mkdirSync(join(recorderDir, 'die'), { recursive: true });
  }

  /** Starts `count` workers of `kind` and waits until each logs that it runs. */
  async start(kind: WorkerKind, count: number): Promise<void> {
    for (let slot = 0; slot < count; slot++) this.spawn(kind, slot);
    await Promise.all([...this.workers.values()].filter((w) => w.kind === kind).map((w) => this.running(w)));
  }

  /** SIGKILLs one running worker of `kind`, chosen at random, and starts its replacement. */
  async killOne(kind: WorkerKind): Promise<void> {
    const w = this.pick(kind);
    w.expected = true;
    this.figures.killedPids.add(w.pid);
    this.figures.kills[kind]++;
    w.child.kill('SIGKILL');
    await w.exited;
    this.spawn(kind, w.slot);
  }

  /**
   * Arms one running pipeline worker to SIGKILL itself right after its next handler commit(), before its
   * batch is recorded complete, and replaces it once it died. Resolves when armed; the kill happens when
   * that worker next commits.
   */
  armCommitWindowKill(): void {
    const w = this.pick('pipeline');
    w.expected = true;
    this.figures.killedPids.add(w.pid);
    this.figures.kills.pipelineInCommitWindow++;
    writeFileSync(join(this.recorderDir, 'die', String(w.pid)), '');
  }

  /** A service restart begins: start-up failures of workers are expected until {@link outageEnds}. */
  outageBegins(): void {
    this.outageUntil = Number.POSITIVE_INFINITY;
  }

  /** The restarted service answers again; a worker starting in the next seconds may still have met it down. */
  outageEnds(): void {
    this.outageUntil = Date.now() + OUTAGE_GRACE_MS;
  }

  /** Waits until no replacement is being started and every worker runs. */
  async settle(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.replacing.length > 0) {
      const pending = this.replacing;
      this.replacing = [];
      await Promise.all(pending);
    }
    for (const w of this.workers.values()) await this.running(w, Math.max(1000, deadline - Date.now()));
  }

  /**
   * Disarms the commit-window kills that have not fired (they must not fire during a graceful stop),
   * waits until every worker runs, then SIGTERMs each and records how it exited; a worker still running
   * after `graceMs` is SIGKILLed.
   */
  async stopAll(graceMs = 45_000): Promise<void> {
    for (const w of this.workers.values())
      rmSync(join(this.recorderDir, 'die', String(w.pid)), { force: true });
    // A replacement started during the drain (after a commit-window kill) must be running first: a
    // process still loading has no SIGTERM handler yet, and would die of the signal instead of stopping.
    await this.settle();
    this.stopping = true;
    const all = [...this.workers.values()].filter(
      (w) => w.child.exitCode === null && w.child.signalCode === null,
    );
    for (const w of all) w.child.kill('SIGTERM');
    await Promise.all(
      all.map(async (w) => {
        const timer = setTimeout(() => w.child.kill('SIGKILL'), graceMs);
        const end = await w.exited;
        clearTimeout(timer);
        this.figures.stopStatuses.push({ kind: w.kind, pid: w.pid, ...end });
      }),
    );
  }

  /** Kills whatever still runs (used in `finally`). */
  killAll(): void {
    this.stopping = true;
    for (const w of this.workers.values()) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    }
  }

  /** Every worker's log file, with its pid. */
  logFiles(): { file: string; pid: number }[] {
    return this.allLogs;
  }

  private readonly allLogs: { file: string; pid: number }[] = [];

  private pick(kind: WorkerKind): Worker {
    const candidates = [...this.workers.values()].filter(
      (w) => w.kind === kind && !w.expected && w.child.exitCode === null && w.child.signalCode === null,
    );
    if (candidates.length === 0) throw new Error(`no running ${kind} worker to kill`);
    return candidates[Math.floor(this.random() * candidates.length)] as Worker;
  }

  private spawn(kind: WorkerKind, slot: number): Worker {
    const command = kind === 'trigger' ? 'trigger-worker' : 'pipeline-worker';
    // Numbered in start order: a slot's successive workers each get their own log.
    const log = join(this.logDir, `${String(this.figures.started + 1).padStart(3, '0')}-${kind}-${slot}.log`);
    const logFd = openSync(log, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, command, '-c', this.configFile], {
      cwd: ROOT,
      env: this.env,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    const pid = child.pid ?? -1;
    this.allLogs.push({ file: log, pid });
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as string | null,
    }));
    const w: Worker = { kind, slot, child, pid, log, exited, expected: false };
    this.workers.set(`${kind}-${slot}`, w);
    this.figures.started++;
    void exited.then((end) => this.onExit(w, end));
    return w;
  }

  private onExit(w: Worker, end: { code: number | null; signal: string | null }): void {
    if (this.stopping || this.workers.get(`${w.kind}-${w.slot}`) !== w) return;
    const startingInOutage =
      end.code === 1 &&
      Date.now() <= this.outageUntil &&
      !readFileSync(w.log, 'utf8').includes(RUNNING[w.kind]);
    // A running worker rides out a broker restart: a consumer kafkajs gives up on ('Failed to find group
    // coordinator') is replaced in the process (src/kafka/consumer-restart.ts). So a running worker that
    // exits on its own is a failure of the run, whatever its reason, the replacements running out
    // included: their budget (kafka.retries in a row, each retrying about a minute) outlasts the outage.
    if (startingInOutage) this.figures.startFailuresInOutage++;
    else if (!w.expected) {
      this.figures.unexpectedExits.push({ kind: w.kind, pid: w.pid, ...end, log: w.log, tail: tail(w.log) });
    }
    // A commit-window kill (or a crash) ends the worker on its own: replace it. killOne replaces its own.
    if (!w.expected || existsSync(join(this.recorderDir, 'die', String(w.pid)))) {
      // After a failed start a supervisor waits a little before trying again.
      const pause = startingInOutage ? 2000 : 0;
      this.replacing.push(
        sleep(pause).then(() => {
          if (!this.stopping) this.spawn(w.kind, w.slot);
        }),
      );
    }
  }

  /**
   * Resolves once the worker of `w`'s slot logs that it runs (following the slot to a replacement when
   * a start failed in an outage); rejects when it crashes or takes too long.
   */
  private async running(w: Worker, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = this.workers.get(`${w.kind}-${w.slot}`) ?? w;
      if (readFileSync(current.log, 'utf8').includes(RUNNING[current.kind])) return;
      if (current.child.exitCode !== null || current.child.signalCode !== null) {
        if (current.expected) return; // killed on purpose meanwhile
        const crash = this.figures.unexpectedExits.find((x) => x.pid === current.pid);
        if (crash !== undefined)
          throw new Error(`the ${current.kind} worker ${current.pid} exited during start-up:\n${crash.tail}`);
        // else: a start that failed in an outage; its replacement is on its way
      }
      if (Date.now() > deadline)
        throw new Error(
          `the ${current.kind} worker ${current.pid} is not running after ${timeoutMs} ms:\n${tail(current.log)}`,
        );
      await sleep(200);
    }
  }
}

/**
 * Readiness probe used by scripts/infra.sh: waits until Kafka or PostgreSQL answers a real client request.
 *
 *   node --import tsx scripts/infra-probe.ts kafka    <brokers> [--timeout-ms N] [--pid N]
 *   node --import tsx scripts/infra-probe.ts postgres <url>     [--timeout-ms N] [--pid N]
 *
 * With --pid, the wait stops as soon as that process exits (a broker that crashed on start-up) instead of
 * running out the clock. Prints one line on success; on failure prints the reason and exits 1.
 */
import { redactDatabaseUrl, waitForDatabase } from '../src/db/databases.js';
import { waitForKafka } from '../src/kafka/admin.js';

function usage(): never {
  process.stderr.write('usage: infra-probe.ts kafka|postgres <address> [--timeout-ms N] [--pid N]\n');
  process.exit(2);
}

const [service, address, ...rest] = process.argv.slice(2);
if ((service !== 'kafka' && service !== 'postgres') || address === undefined || address === '') usage();
let timeoutMs = 60000;
let pid: number | undefined;
for (let i = 0; i < rest.length; i += 2) {
  const value = Number(rest[i + 1]);
  if (!Number.isInteger(value) || value <= 0) usage();
  if (rest[i] === '--timeout-ms') timeoutMs = value;
  else if (rest[i] === '--pid') pid = value;
  else usage();
}

function processGone(): string | undefined {
  if (pid === undefined) return undefined;
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (error) {
    // EPERM means it exists but belongs to someone else: still alive.
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? `process ${pid} exited` : undefined;
  }
}

try {
  if (service === 'kafka') {
    const info = await waitForKafka({ brokers: address, timeoutMs, abortReason: processGone });
    const nodes = info.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`).join(', ');
    process.stdout.write(
      `Kafka cluster ${info.clusterId} ready: broker(s) ${nodes}, controller ${info.controller}\n`,
    );
  } else {
    const version = await waitForDatabase(address, { timeoutMs, abortReason: processGone });
    process.stdout.write(`PostgreSQL ${version} ready at ${redactDatabaseUrl(address)}\n`);
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

/**
 * Everything a worker process needs for its operations endpoint, started and stopped as one: the
 * consumer lag monitor (on its own admin client) and the ops server (`/metrics`, `/healthz`, `/readyz`).
 * `metrics.port: 0` in the configuration disables the lot.
 */
import { type OpsServer, type ReadinessReport, startOpsServer } from '../http/ops-server.js';
import { fetchConsumerLag } from '../kafka/lag.js';
import type { Admin, Kafka } from '../kafka/types.js';
import type { Logger } from '../log.js';
import { ConsumerLagMonitor, type LagTarget } from './lag-monitor.js';
import type { WinchesterMetrics } from './metrics.js';

/** Options of {@link startWorkerOps}. */
export interface WorkerOpsOptions {
  /** `metrics.host`. */
  readonly host: string;
  /** `metrics.port`; 0 disables the endpoint (nothing is started). */
  readonly port: number;
  readonly metrics: WinchesterMetrics;
  /** Where the lag monitor's admin client comes from. */
  readonly kafka: Pick<Kafka, 'admin'>;
  /** The consumer groups (and their topics) whose lag this process reports. */
  readonly lagTargets: readonly LagTarget[];
  readonly ready: () => Promise<ReadinessReport>;
  readonly log: Logger;
  /** Milliseconds between lag refreshes. Default 15000. */
  readonly lagIntervalMs?: number;
}

/** The running endpoint. */
export interface WorkerOps {
  /** The port listened on, or null when disabled. */
  readonly port: number | null;
  /** Stops the lag monitor and the server and disconnects the admin client. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the lag monitor and the ops server (unless `port` is 0).
 * @throws OpsServerListenError when the port cannot be listened on (everything started is stopped first).
 */
export async function startWorkerOps(options: WorkerOpsOptions): Promise<WorkerOps> {
  if (options.port === 0) return { port: null, stop: async () => undefined };
  const { metrics, log } = options;
  // The admin connects on the first lag refresh (and again after a failed connect), so a broker that
  // is still starting delays nothing but the first lag values.
  const admin: Admin = options.kafka.admin();
  let connected: Promise<void> | undefined;
  const connect = () => {
    connected ??= admin.connect().catch((error: unknown) => {
      connected = undefined; // the next refresh tries again
      throw error;
    });
    return connected;
  };
  const monitor = new ConsumerLagMonitor({
    metrics,
    targets: options.lagTargets,
    fetchLag: async (group, topic) => {
      await connect();
      return fetchConsumerLag(admin, group, topic);
    },
    log,
    ...(options.lagIntervalMs === undefined ? {} : { intervalMs: options.lagIntervalMs }),
  });
  let server: OpsServer;
  try {
    server = await startOpsServer({
      host: options.host,
      port: options.port,
      registry: metrics.registry,
      ready: options.ready,
      beforeMetrics: () => monitor.refreshIfStale(),
      log,
    });
  } catch (error) {
    await admin.disconnect().catch(() => undefined);
    throw error;
  }
  monitor.start();
  let stopping: Promise<void> | undefined;
  return {
    port: server.port,
    stop() {
      stopping ??= (async () => {
        await server.close();
        await monitor.stop();
        await admin.disconnect().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

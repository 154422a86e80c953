/**
 * Structured logs: one JSON object per line on stdout (DESIGN.md §Observability), so that a log
 * collector parses them without patterns. Every worker and handler receives a {@link Logger} by
 * injection; nothing logs through a module-level singleton.
 */

/** Severity, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Writes one structured line: `{"time":…,"level":…,"msg":…,...fields}`. */
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Options of {@link createJsonLogger}. */
export interface JsonLoggerOptions {
  /** Lines below this level are dropped. Default `info`. */
  readonly level?: LogLevel;
  /** Where lines go. Default: process.stdout. */
  readonly write?: (line: string) => void;
  /** Fields added to every line (e.g. `{worker: 'trigger'}`). */
  readonly base?: Record<string, unknown>;
  /** The time stamp of a line. Default: the machine clock. */
  readonly now?: () => Date;
}

/** A logger writing JSON lines. Fields that cannot be serialised are replaced by their string form. */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const base = options.base ?? {};
  const now = options.now ?? (() => new Date());
  return (level, msg, fields) => {
    if (RANK[level] < min) return;
    const record = { time: now().toISOString(), level, msg, ...base, ...fields };
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch {
      line = JSON.stringify({ time: record.time, level, msg, unserialisable: String(fields) });
    }
    write(`${line}\n`);
  };
}

/** Errors log their message (and code), bigints their digits: JSON.stringify drops or throws on both. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined
      ? { error: value.name, message: value.message }
      : { error: value.name, message: value.message, code };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that drops everything (tests, and library use without logs). */
export const silentLogger: Logger = () => {};

/**
 * Typed errors shared by every layer. Each says whether retrying can help and keeps its cause,
 * so callers classify once (at the adapter boundary) and never match on message text.
 */
export class WinchesterError extends Error {
  /** True when the same operation may succeed later (an outage), false for bad input or config. */
  readonly retriable: boolean;

  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * `error` followed by its causes (`error.cause`, then that one's, …), at most `max` deep and stopping at a
 * cycle: what every layer walks to find the root cause a wrapper hides (a slonik error around pg's, a
 * kafkajs retries-exceeded error around the connection error).
 */
export function causeChain(error: unknown, max = 10): unknown[] {
  const chain: unknown[] = [];
  let current = error;
  while (current !== undefined && current !== null && chain.length < max && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/** Whether `error` or one of its causes has `code` (a SQLSTATE, or a Node or driver error code). */
export function hasErrorCode(error: unknown, code: string): boolean {
  return causeChain(error).some((e) => (e as { code?: unknown }).code === code);
}

/** Bad command-line usage: the CLI exits with status 2. */
export class UsageError extends WinchesterError {}

/** One problem in a configuration file, located by file and (when known) line and column. */
export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  message: string;
}

/** Formats a problem as `file:line:column: message`, the shape editors and humans both read. */
export function formatProblem(p: ConfigProblem): string {
  const where =
    p.line === undefined ? p.file : `${p.file}:${p.line}${p.column === undefined ? '' : `:${p.column}`}`;
  return `${where}: ${p.message}`;
}

/** Invalid configuration: lists every problem found; the CLI exits with status 2. */
export class ConfigError extends WinchesterError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[], options: { cause?: unknown } = {}) {
    super(problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}

/** Bad input data (a notification, an expression, an event): the CLI exits with status 1. */
export class InputError extends WinchesterError {}

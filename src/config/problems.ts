import { ConfigError, type ConfigProblem } from '../errors.js';

/** A 1-based line and column in a configuration file. */
export interface Pos {
  readonly line: number;
  readonly column: number;
}

/**
 * Collects every problem found while loading configuration, so a user sees all of them at once
 * instead of fixing one per start. Errors stop the load ({@link Problems.throwIfAny}); warnings
 * (unknown keys, ignored reference settings) are kept on the result.
 */
export class Problems {
  readonly errors: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  /**
   * @param unknownKeys what a key that is not a typo of a known one is: `warn` (the default, as the workers
   * load a file: the reference ignores such keys, so a file it runs must start here too) or `error`
   * (`winchester check`: a key nothing reads is a mistake until proven otherwise).
   */
  constructor(private readonly options: { readonly unknownKeys?: 'warn' | 'error' } = {}) {}

  error(file: string, pos: Pos | undefined, message: string): void {
    this.errors.push(problem(file, pos, message));
  }

  warn(file: string, pos: Pos | undefined, message: string): void {
    this.warnings.push(problem(file, pos, message));
  }

  /**
   * A key nothing reads and that is no near miss of a known one (`what`: "trigger 't': unknown key 'x'"):
   * an error as it is, or a warning that it is ignored, per the options.
   */
  unknownKey(file: string, pos: Pos | undefined, what: string): void {
    if (this.options.unknownKeys === 'error') this.error(file, pos, what);
    else this.warn(file, pos, `${what} is ignored`);
  }

  get ok(): boolean {
    return this.errors.length === 0;
  }

  /** Throws a {@link ConfigError} listing every error, sorted by file and position. */
  throwIfAny(): void {
    if (this.errors.length > 0) throw new ConfigError(sortProblems(this.errors));
  }
}

function problem(file: string, pos: Pos | undefined, message: string): ConfigProblem {
  return pos === undefined ? { file, message } : { file, line: pos.line, column: pos.column, message };
}

/**
 * Orders problems by line and column within each file; files keep the order in which their first
 * problem was found (the order they were loaded in), and problems at the same place keep theirs.
 */
export function sortProblems(list: readonly ConfigProblem[]): ConfigProblem[] {
  const fileOrder = new Map<string, number>();
  for (const p of list) if (!fileOrder.has(p.file)) fileOrder.set(p.file, fileOrder.size);
  return list
    .map((p, i) => ({ p, i }))
    .sort(
      (a, b) =>
        (fileOrder.get(a.p.file) ?? 0) - (fileOrder.get(b.p.file) ?? 0) ||
        (a.p.line ?? 0) - (b.p.line ?? 0) ||
        (a.p.column ?? 0) - (b.p.column ?? 0) ||
        a.i - b.i,
    )
    .map(({ p }) => p);
}

import { InputError } from '../errors.js';

/**
 * Base class of every timex failure. Both kinds are bad input (an expression or the values it is
 * evaluated with), never an outage, so the CLI exits 1 and nothing retries them.
 */
export class TimexError extends InputError {}

/**
 * An expression that cannot be parsed. `position` is the 0-based character offset in `source`
 * where the problem was found; the message ends with `at position N` so it reads on its own.
 */
export class TimexSyntaxError extends TimexError {
  readonly position: number;
  readonly source: string;

  constructor(message: string, source: string, position: number) {
    super(`${message} at position ${position}`);
    this.position = position;
    this.source = source;
  }

  /** The source with a caret under the offending character, for terminal output. */
  pointer(): string {
    return `${this.source}\n${' '.repeat(this.position)}^`;
  }
}

/**
 * A parsed expression that cannot be evaluated with the given values: a referenced variable is
 * missing, a replacement is not a valid calendar value, or the result leaves the supported
 * date range (1700–2200). A trigger treats it as "does not match", not as a crash.
 */
export class TimexEvalError extends TimexError {}

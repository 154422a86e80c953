/**
 * Database failures classified once, here at the adapter boundary: "could not talk to PostgreSQL"
 * (retriable) versus everything else (a bug, a constraint, a refused statement). Callers decide on
 * `retriable`, never on driver class names or message text.
 */
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  ConnectionError,
  IdleTransactionTimeoutError,
  StatementTimeoutError,
} from 'slonik';
import { causeChain, WinchesterError } from '../errors.js';
import { DatabaseUnavailableError } from './databases.js';

// SQLSTATE classes/codes meaning the server could not serve the statement right now, not that it was wrong:
// 08 connection exception, 57P01-57P03 admin/crash shutdown or cannot connect now, 53 insufficient
// resources, 40001 serialization failure, 40P01 deadlock, 55P03 lock not available.
const RETRIABLE_SQLSTATE = /^(08|53|57P0[123]$|40001$|40P01$|55P03$)/;

// Node socket errors that mean the server is unreachable or went away mid-query.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

// slonik's classes for the same situations (it wraps the pg error as `cause`, which may say less).
// Checked with instanceof: slonik errors do not set `name`.
const RETRIABLE_CLASSES = [
  ConnectionError,
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  StatementTimeoutError,
  IdleTransactionTimeoutError,
];

const MESSAGE_HINTS = /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i;

/** Whether `error` (a slonik, pg or socket error, or one wrapping it) means PostgreSQL was unavailable. */
export function isRetriableDatabaseError(error: unknown): boolean {
  for (const e of causeChain(error)) {
    if (e instanceof WinchesterError) return e.retriable;
    if (typeof e !== 'object' || e === null) continue;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || RETRIABLE_SQLSTATE.test(code))) return true;
    if (RETRIABLE_CLASSES.some((c) => e instanceof c)) return true;
    if (typeof message === 'string' && MESSAGE_HINTS.test(message)) return true;
  }
  return false;
}

/** A one-line description of a database error including its root cause (never the URL's password). */
export function describeDatabaseError(error: unknown): string {
  const messages: string[] = [];
  for (const e of causeChain(error)) {
    const m = e instanceof Error ? e.message : String(e);
    // AggregateError (several addresses refused) has an empty message; its parts say why.
    if (m === '' && e instanceof AggregateError) {
      for (const part of e.errors) {
        const pm = part instanceof Error ? part.message : String(part);
        if (pm !== '' && !messages.includes(pm)) messages.push(pm);
      }
    } else if (m !== '' && !messages.some((x) => x.includes(m))) {
      messages.push(m);
    }
  }
  return messages.join(': ') || String(error);
}

/**
 * Passes WinchesterErrors through; turns an outage into a {@link DatabaseUnavailableError} saying what
 * was being done; returns anything else unchanged (a bug or a refused statement is not retried).
 */
export function classifyDatabaseError(error: unknown, doing: string): unknown {
  if (error instanceof WinchesterError) return error;
  if (isRetriableDatabaseError(error)) {
    return new DatabaseUnavailableError(`${doing}: ${describeDatabaseError(error)}`, { cause: error });
  }
  return error;
}

/** PostgreSQL refused a statement (a constraint, a refused state change, a bug): retrying will not help. */
export class DatabaseError extends WinchesterError {}

/**
 * Like {@link classifyDatabaseError}, but always a WinchesterError: anything neither retriable nor
 * already typed becomes a {@link DatabaseError} whose message carries the server's own words.
 */
export function toDatabaseError(error: unknown, doing: string): WinchesterError {
  const classified = classifyDatabaseError(error, doing);
  if (classified instanceof WinchesterError) return classified;
  return new DatabaseError(`${doing}: ${describeDatabaseError(error)}`, { cause: error });
}

/**
 * Name-based UUIDs (RFC 4122 version 5, SHA-1) and the UUID text forms Python's `uuid.UUID(str)`
 * accepts. The usage handler derives the message id of each verdict from the audited event's
 * message id this way, exactly as the reference does with `uuid.uuid5(uuid.UUID(original), type)`,
 * so the same verdict produced twice (a retried batch, a re-fired stream) has the same message id
 * and is recognised as a duplicate downstream.
 */
import { createHash } from 'node:crypto';

/** The 16 bytes of a UUID. */
export type UuidBytes = Uint8Array;

/** The nil UUID, 00000000-0000-0000-0000-000000000000. */
export const NIL_UUID: UuidBytes = new Uint8Array(16);

// What Python's int(x, 16) accepts once the UUID constructor has stripped its decorations: an
// optional `+` (a `-` is already gone with the hyphens), an optional 0x prefix, hex digits with
// single underscores between them.
const PY_HEX_INT = /^\+?(?:0[xX](?:_?[0-9a-fA-F])+|[0-9a-fA-F](?:_?[0-9a-fA-F])*)$/;

/**
 * Reads a UUID as Python's `uuid.UUID(text)` does, or returns undefined where Python raises
 * ValueError. Python removes every `urn:` and `uuid:`, strips braces from both ends and removes
 * every hyphen, requires exactly 32 characters left, and reads them as a base-16 integer (so
 * `{12345678-1234-5678-1234-567812345678}`, `urn:uuid:…` and upper case are all accepted).
 */
export function parseUuid(text: string): UuidBytes | undefined {
  let hex = text.replaceAll('urn:', '').replaceAll('uuid:', '');
  hex = hex
    .replace(/^[{}]+/, '')
    .replace(/[{}]+$/, '')
    .replaceAll('-', '');
  if (hex.length !== 32) return undefined;
  const body = hex.trim();
  if (!PY_HEX_INT.test(body)) return undefined;
  const negative = body.startsWith('-');
  const digits = body
    .replace(/^[+-]/, '')
    .replace(/^0[xX]/, '')
    .replaceAll('_', '');
  const value = BigInt(`0x${digits}`);
  // Python accepts a signed zero but no negative value (int out of range).
  if (negative && value !== 0n) return undefined;
  const bytes = new Uint8Array(16);
  let v = value;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytes;
}

/** The canonical text form: lower-case hex, hyphenated 8-4-4-4-12. */
export function formatUuid(bytes: UuidBytes): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The bytes of a version 5 UUID: SHA-1 of the namespace's bytes then the name in UTF-8. */
export function uuidV5Bytes(namespace: UuidBytes, name: string): UuidBytes {
  const digest = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  const bytes = new Uint8Array(digest.buffer, digest.byteOffset, 16).slice();
  bytes[6] = (bytes[6]! & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return bytes;
}

/** A version 5 UUID in its canonical text form (Python's `str(uuid.uuid5(namespace, name))`). */
export function uuidV5(namespace: UuidBytes, name: string): string {
  return formatUuid(uuidV5Bytes(namespace, name));
}

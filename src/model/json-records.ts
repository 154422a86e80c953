/**
 * Streams JSON records from a file or stdin, in either shape the offline commands accept:
 * JSON lines (one value per line, blank lines skipped) or one JSON array of values. The shape is
 * decided by the first non-blank character (`[` → array). Records are yielded as raw text with
 * their 1-based line number, without being parsed, so callers choose their parser (`JSON.parse`
 * for notifications, a lossless one for events) and memory stays bounded by the largest record.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** One record of the input. */
export interface JsonRecord {
  /** Line where the record starts (1-based). */
  line: number;
  /** The record's JSON text (not yet parsed), or undefined when `error` is set. */
  text?: string;
  /** A framing error (e.g. an unterminated array); the stream ends after it. */
  error?: string;
}

/**
 * Splits the text of a top-level JSON array into element texts incrementally: it tracks strings,
 * escapes and bracket depth only, leaving full validation to the element parser.
 */
class ArraySplitter {
  private state: 'before' | 'open' | 'after' = 'before';
  private depth = 0;
  private inString = false;
  private escape = false;
  private buf = '';
  private bufLine = 0;
  private line = 1;
  /** Set when a record has been started (non-whitespace seen since the last separator). */
  private started = false;
  private trailing = false;

  constructor(private readonly emit: (r: JsonRecord) => void) {}

  push(chunk: string): void {
    let segStart = 0;
    const flushSeg = (end: number) => {
      if (this.started) this.buf += chunk.slice(segStart, end);
    };
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === 0x0a) this.line++;
      if (this.state === 'before') {
        if (c === 0x5b) this.state = 'open';
        segStart = i + 1;
        continue;
      }
      if (this.state === 'after') {
        if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) this.trailing = true;
        continue;
      }
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c) this.escape = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (!this.started) {
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
          segStart = i + 1;
          continue;
        }
        if (c === 0x5d && this.depth === 0) {
          this.state = 'after';
          continue;
        }
        this.started = true;
        this.bufLine = this.line - (c === 0x0a ? 1 : 0);
        segStart = i;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x5b || c === 0x7b) this.depth++;
      else if ((c === 0x5d || c === 0x7d) && this.depth > 0) this.depth--;
      else if (this.depth === 0 && (c === 0x2c || c === 0x5d)) {
        flushSeg(i);
        this.emit({ line: this.bufLine, text: this.buf.trimEnd() });
        this.buf = '';
        this.started = false;
        segStart = i + 1;
        if (c === 0x5d) this.state = 'after';
      }
    }
    flushSeg(chunk.length);
  }

  end(): void {
    if (this.state === 'open') {
      this.emit({ line: this.line, error: 'unexpected end of input: the JSON array is not closed' });
    } else if (this.trailing) {
      this.emit({ line: this.line, error: 'unexpected data after the JSON array' });
    }
  }
}

/**
 * Yields the records of a readable stream of UTF-8 text (see module header). Never throws for
 * bad content; stream errors (e.g. unreadable file) propagate.
 */
export async function* readJsonRecords(
  input: Readable | AsyncIterable<string | Buffer>,
): AsyncGenerator<JsonRecord> {
  const decoder = new StringDecoder('utf8');
  let mode: 'unknown' | 'lines' | 'array' = 'unknown';
  let pending = ''; // lines mode: the incomplete last line; unknown mode: leading whitespace
  let lineNo = 0;
  const out: JsonRecord[] = [];
  const splitter = new ArraySplitter((r) => out.push(r));

  const feedLines = (text: string, final: boolean) => {
    const all = pending + text;
    const parts = all.split('\n');
    pending = final ? '' : parts.pop()!;
    for (const raw of parts) {
      lineNo++;
      const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (l.trim() !== '') out.push({ line: lineNo, text: l });
    }
  };

  const feed = (text: string, final: boolean) => {
    if (mode === 'unknown') {
      const all = pending + text;
      const m = /\S/.exec(all);
      if (!m) {
        pending = all;
        return;
      }
      pending = '';
      if (all[m.index] === '[') {
        mode = 'array';
        splitter.push(all);
      } else {
        mode = 'lines';
        feedLines(all, final);
      }
      return;
    }
    if (mode === 'array') splitter.push(text);
    else feedLines(text, final);
  };

  for await (const chunk of input) {
    feed(typeof chunk === 'string' ? chunk : decoder.write(chunk), false);
    if (out.length > 0) yield* out.splice(0, out.length);
  }
  feed(decoder.end(), true);
  // `mode` is assigned inside `feed`; re-read it through a widened type.
  const finalMode = mode as 'unknown' | 'lines' | 'array';
  if (finalMode === 'array') splitter.end();
  yield* out.splice(0, out.length);
}

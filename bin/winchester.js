#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('winchester: dist/ is missing; run `npm ci` (or `npm run build`) first\n');
  process.exit(2);
}
// A closed pipe (`winchester generate | head`) ends the output, not the process with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
// The command is done. A library's timer (kafkajs retrying a request its stopped client no longer needs)
// must not keep the process alive: give pending output a moment, then exit with the command's status.
setTimeout(() => process.exit(), 3000).unref();

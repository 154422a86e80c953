// Regenerates docs/configuration.md from the settings schema (src/config/schema.ts).
// Usage: node --import tsx scripts/config-docs.ts [--check]
// With --check it writes nothing and exits 1 when the file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from '../src/config/docs.js';

const target = new URL('../docs/configuration.md', import.meta.url);
const text = renderConfigurationDoc();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing counts as out of date
  }
  if (current !== text) {
    console.error('docs/configuration.md is out of date: run node --import tsx scripts/config-docs.ts');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigurationDoc } from '../../../src/config/docs.js';
import { envName, leaves } from '../../../src/config/schema.js';

const docPath = new URL('../../../docs/configuration.md', import.meta.url);

test('docs/configuration.md is generated from the schema and in sync (node --import tsx scripts/config-docs.ts)', () => {
  assert.equal(readFileSync(docPath, 'utf8'), renderConfigurationDoc());
});

test('the doc names every setting and its environment variable', () => {
  const doc = renderConfigurationDoc();
  for (const [path, spec] of leaves()) {
    assert.ok(doc.includes(`\`${path[path.length - 1]}\``), path.join('.'));
    if (spec.env) assert.ok(doc.includes(envName(path)), envName(path));
  }
});

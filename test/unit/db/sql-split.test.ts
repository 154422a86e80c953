import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { splitSqlStatements } from '../../../src/db/sql-split.js';

test('splits on semicolons outside strings, identifiers, dollar quotes and comments', () => {
  const script = `
-- a comment; with a semicolon
CREATE TABLE "odd;name" (v text DEFAULT 'it''s; fine');
/* block; /* nested; */ still comment; */
INSERT INTO t VALUES (E'back\\'slash;', $1);
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE NOTICE 'x;y'; RETURN NEW;
END;
$fn$;
SELECT $$a;b$$, price$ FROM x;;
  ;
SELECT 1 -- trailing, no semicolon`;
  assert.deepEqual(
    splitSqlStatements(script).map((s) => s.replace(/^(--.*\n|\/\*[\s\S]*\*\/\n)*/g, '').split('\n')[0]),
    [
      `CREATE TABLE "odd;name" (v text DEFAULT 'it''s; fine')`,
      `INSERT INTO t VALUES (E'back\\'slash;', $1)`,
      'CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$',
      'SELECT $$a;b$$, price$ FROM x',
      'SELECT 1 -- trailing, no semicolon',
    ],
  );
});

test('comment-only and empty scripts have no statements', () => {
  assert.deepEqual(splitSqlStatements(''), []);
  assert.deepEqual(splitSqlStatements('  ;\n-- only ; a comment\n/* and ; this */ ;'), []);
});

test('unterminated strings, identifiers, dollar quotes and comments are errors', () => {
  for (const bad of ["SELECT 'open", 'SELECT "open', 'SELECT $$ open', 'SELECT $t$ x $u$', '/* open /* */']) {
    assert.throws(() => splitSqlStatements(bad), SyntaxError, bad);
  }
});

test('property: statements joined with ";" split back into the same statements', () => {
  const piece = fc.constantFrom(
    'SELECT 1',
    "SELECT 'a;b'",
    'SELECT "c;d" FROM t',
    'SELECT $$e;f$$',
    'SELECT $x$ g; $$ h $x$',
    "SELECT E'\\';'",
    'SELECT 1 /* ; */ + 2',
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
      assert.deepEqual(splitSqlStatements(pieces.map((p) => `${p};\n`).join('')), pieces);
    }),
  );
});

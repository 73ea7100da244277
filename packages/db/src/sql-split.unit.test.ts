import { describe, expect, it } from 'vitest';
import { splitSql } from './sql-split.js';

describe('splitSql', () => {
  it('splits at top-level semicolons and drops empty statements', () => {
    expect(splitSql('SELECT 1; SELECT 2;\n\n;  ')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('keeps semicolons inside literals, identifiers, comments and dollar quotes', () => {
    const script = [
      "INSERT INTO t VALUES ('a;b', 'it''s; fine');",
      'SELECT 1 AS "odd;name"; -- trailing; comment',
      '/* block; comment */ SELECT 2;',
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql;',
      'DO $$ BEGIN PERFORM 1; END $$;',
    ].join('\n');
    const parts = splitSql(script);
    expect(parts).toHaveLength(5);
    expect(parts[0]).toBe("INSERT INTO t VALUES ('a;b', 'it''s; fine')");
    expect(parts[1]).toBe('SELECT 1 AS "odd;name"');
    expect(parts[2]).toBe('-- trailing; comment\n/* block; comment */ SELECT 2');
    expect(parts[3]).toBe(
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql',
    );
    expect(parts[4]).toBe('DO $$ BEGIN PERFORM 1; END $$');
  });

  it('ignores a script that is only comments', () => {
    expect(splitSql('-- nothing here;\n-- at all')).toEqual([]);
  });
});

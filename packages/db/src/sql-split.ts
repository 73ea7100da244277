/**
 * Splits a SQL script into statements at top-level semicolons, keeping semicolons inside quotes,
 * dollar-quoted bodies and comments. Needed where statements must run one by one: TimescaleDB
 * refuses continuous-aggregate DDL inside a transaction block, and a multi-statement simple query
 * is one implicit transaction.
 */
export function splitSql(script: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  const n = script.length;
  while (i < n) {
    const c = script[i]!;
    const next = script[i + 1];
    if (c === '-' && next === '-') {
      const end = script.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
    } else if (c === "'" || c === '"') {
      // A doubled quote inside a literal is an escaped quote; scanning past it works unchanged.
      const end = script.indexOf(c, i + 1);
      i = end === -1 ? n : end + 1;
    } else if (c === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(script.slice(i, i + 64))?.[0];
      if (tag) {
        const end = script.indexOf(tag, i + tag.length);
        i = end === -1 ? n : end + tag.length;
      } else {
        i++;
      }
    } else if (c === ';') {
      push(script.slice(start, i));
      start = i + 1;
      i++;
    } else {
      i++;
    }
  }
  push(script.slice(start));
  return statements;

  function push(text: string): void {
    const withoutComments = text.replace(/--[^\n]*/g, '').trim();
    if (withoutComments !== '') statements.push(text.trim());
  }
}

import pg from 'pg';

/** Where the data lives: a PostgreSQL URL and, for tests isolated by schema, that schema. */
export interface DbTarget {
  url: string;
  /** Put first on the search_path of every connection; default: the server's default path. */
  schema?: string | undefined;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The statement that points a connection at `schema` (TimescaleDB's functions stay in public). */
export function searchPathSql(schema: string): string {
  return `SET search_path TO ${quoteIdent(schema)}, public`;
}

/** A single client, pointed at the target's schema; the caller ends it. */
export async function connect(target: DbTarget): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  try {
    if (target.schema) await client.query(searchPathSql(target.schema));
  } catch (err) {
    await client.end();
    throw err;
  }
  return client;
}

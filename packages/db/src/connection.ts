import pg from 'pg';

/**
 * Every wait on the database is bounded, so a server that stops answering without closing the
 * connection (packets dropped, a broken network) surfaces as an error to retry, not a silent hang.
 */
export interface DbTimeouts {
  /** TCP connect plus startup (pg `connectionTimeoutMillis`). */
  connectTimeoutMs: number;
  /** Server side (`statement_timeout`): the server cancels a statement running longer, cleanly. */
  statementTimeoutMs: number;
  /**
   * Client side (pg `query_timeout`): no answer within this fails the query even when the server
   * cannot be reached to cancel it. A little above the statement timeout so a slow but reachable
   * server's own cancellation wins; the connection it fails on is discarded (Sequelize marks a
   * "Query read timeout" connection invalid), so a transaction left open on it never commits.
   */
  queryTimeoutMs: number;
  /** Server side: a session idle inside a transaction this long is ended (its client is gone). */
  idleInTransactionTimeoutMs: number;
  /** Waiting for a pooled connection (Sequelize pool `acquire`). */
  acquireTimeoutMs: number;
}

export const DEFAULT_DB_TIMEOUTS: Readonly<DbTimeouts> = Object.freeze({
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 30_000,
  queryTimeoutMs: 35_000,
  idleInTransactionTimeoutMs: 60_000,
  acquireTimeoutMs: 40_000,
});

/** Where the data lives: a PostgreSQL URL and, for tests isolated by schema, that schema. */
export interface DbTarget {
  url: string;
  /** Put first on the search_path of every connection; default: the server's default path. */
  schema?: string | undefined;
  /** Overrides of DEFAULT_DB_TIMEOUTS. */
  timeouts?: Partial<DbTimeouts> | undefined;
}

export function dbTimeouts(target: Pick<DbTarget, 'timeouts'>): DbTimeouts {
  return { ...DEFAULT_DB_TIMEOUTS, ...target.timeouts };
}

/**
 * The pg client options of `timeouts`: as `new pg.Client({...})` takes them, and as Sequelize's
 * `dialectOptions` passes them on (sequelize 6 postgres connection-manager picks these names).
 */
export function pgTimeoutOptions(timeouts: DbTimeouts): {
  connectionTimeoutMillis: number;
  statement_timeout: number;
  query_timeout: number;
  idle_in_transaction_session_timeout: number;
  keepAlive: true;
} {
  return {
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    statement_timeout: timeouts.statementTimeoutMs,
    query_timeout: timeouts.queryTimeoutMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionTimeoutMs,
    // TCP keepalive: a peer that vanished is eventually noticed even on an idle connection.
    keepAlive: true,
  };
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The statement that points a connection at `schema` (TimescaleDB's functions stay in public). */
export function searchPathSql(schema: string): string {
  return `SET search_path TO ${quoteIdent(schema)}, public`;
}

/**
 * A single client, pointed at the target's schema; the caller ends it. Migrations run on it, and
 * a migration may rightly take long, so only connecting is bounded unless `timeouts` are given.
 */
export async function connect(target: DbTarget): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: target.url,
    ...(target.timeouts
      ? pgTimeoutOptions(dbTimeouts(target))
      : { connectionTimeoutMillis: DEFAULT_DB_TIMEOUTS.connectTimeoutMs, keepAlive: true }),
  });
  await client.connect();
  try {
    if (target.schema) await client.query(searchPathSql(target.schema));
  } catch (err) {
    await client.end();
    throw err;
  }
  return client;
}

/** The embedded PostgreSQL's fixed settings, shared by start.ts and postgres.ts. */
export const PG_USER = 'postgres';
/** Only for this local server, which listens on 127.0.0.1 alone. */
export const PG_PASSWORD = 'candlestream';
export const PG_DATABASE = 'candlestream';
/** Where `pnpm start` runs it unless PG_PORT says otherwise. */
export const PG_DEFAULT_PORT = 54329;

/** The URL of the embedded PostgreSQL listening on `port`. */
export function embeddedDatabaseUrl(port: number): string {
  return `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${String(port)}/${PG_DATABASE}`;
}

/** The embedded PostgreSQL's fixed settings, shared by start.ts and postgres.ts. */
export const PG_USER = 'postgres';
/** Only for this local server, which listens on 127.0.0.1 alone. */
export const PG_PASSWORD = 'candlestream';
export const PG_DATABASE = 'candlestream';

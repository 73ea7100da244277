export * from './connection.js';
export * from './migrate.js';
export * from './models.js';
export * from './repository.js';
export { splitSql } from './sql-split.js';
export { epochMsSql, fromEpochMsSql } from './sql-time.js';
export * from './backfill-jobs.js';
export { isDataError } from './errors.js';

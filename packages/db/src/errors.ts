/** PostgreSQL SQLSTATE classes that mean "this data is refused", not "try again". */
const DATA_ERROR_CLASSES = ['22', '23'];

function sqlState(err: unknown): string | undefined {
  const e = err as { parent?: { code?: unknown }; original?: { code?: unknown }; code?: unknown };
  const code = e.parent?.code ?? e.original?.code ?? e.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether the database refused the data itself (SQLSTATE class 22 data exception or 23
 * integrity violation): retrying the same rows cannot help. Seen through sequelize's wrapper
 * (`parent`, `original`) or on a pg error directly.
 */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && DATA_ERROR_CLASSES.includes(state.slice(0, 2));
}

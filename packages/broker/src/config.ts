/** The few environment reads of this package (lint: only config.ts reads process.env). */

/** CI runs must not silently skip the librdkafka (kcat) compatibility test. */
export const IS_CI = process.env['CI'] === 'true';

/** Which kcat binary the compatibility test drives; default the one on PATH. */
export const KCAT_BIN = process.env['KCAT_BIN'] ?? 'kcat';

import type Joi from 'joi';

/** Outcome of decoding untrusted input: the value, or the reason it was refused. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Joi options for wire messages: no type coercion ("1" is not 1), every problem reported. */
export const WIRE_OPTIONS: Joi.ValidationOptions = {
  convert: false,
  abortEarly: false,
  stripUnknown: true,
};

/** Joins a joi error's details into one human-readable line. */
export function describeJoiError(error: Joi.ValidationError): string {
  return error.details.map((d) => d.message.replaceAll('"', '')).join('; ');
}

// TextEncoder/TextDecoder rather than Buffer: core also runs in the browser (the chart's datafeed).
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Decodes UTF-8 JSON, refusing oversize input, invalid UTF-8 and invalid JSON with a reason. */
export function parseJsonMessage(raw: Uint8Array | string, maxBytes: number): Decoded<unknown> {
  const size = typeof raw === 'string' ? utf8Encoder.encode(raw).byteLength : raw.byteLength;
  if (size > maxBytes) return { ok: false, reason: `message is ${size} bytes, over ${maxBytes}` };
  let text: string;
  try {
    text = typeof raw === 'string' ? raw : utf8.decode(raw);
  } catch {
    return { ok: false, reason: 'message is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: `invalid JSON: ${(err as Error).message}` };
  }
}

/** Validates `value` against a schema under wire rules. */
export function validateWith<T>(schema: Joi.Schema<T>, value: unknown): Decoded<T> {
  // Narrow on `error` before touching `value`: joi types the failed result's value as any.
  const result = schema.validate(value, WIRE_OPTIONS);
  if (result.error) return { ok: false, reason: describeJoiError(result.error) };
  return { ok: true, value: result.value };
}

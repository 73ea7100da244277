import type { RequestHeader } from '../apis/types.js';
import type { Reader } from './reader.js';

/**
 * Request header v1 (api_key, api_version, correlation_id, client_id). Header v2, used by flexible
 * requests, adds tagged fields after client_id; the caller skips them once it knows the API's
 * flexible versions (client_id itself stays a classic nullable string, KIP-482).
 */
export function readRequestHeader(reader: Reader): RequestHeader {
  return {
    apiKey: reader.int16(),
    apiVersion: reader.int16(),
    correlationId: reader.int32(),
    clientId: reader.nullableString(),
  };
}

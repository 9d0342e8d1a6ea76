import type { ServerResponse } from 'node:http';

/**
 * The one catalogue of errors the gateway returns to clients. Each code is stable (clients
 * and dashboards may match on it), has the HTTP status it is sent with and a message that
 * never carries host details. test/core/errors.test.ts pins that codes are unique and
 * documented in the README.
 */
export const ERRORS = {
  ISG_ERR_NO_ROUTE: { status: 404, message: 'no route matches this request' },
  ISG_ERR_BAD_REQUEST: { status: 400, message: 'malformed request' },
  ISG_ERR_BAD_HEADER: { status: 400, message: 'malformed header line (a name or value with characters HTTP does not allow)' },
  ISG_ERR_BAD_FRAMING: { status: 400, message: 'invalid request body framing (Content-Length, Transfer-Encoding or chunk size)' },
  ISG_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header or cookie too large' },
  ISG_ERR_REQUEST_TIMEOUT: { status: 408, message: 'request timeout: the request headers did not arrive in time' },
  ISG_ERR_NO_HTTP_VERSION: { status: 400, message: 'the request line has no HTTP version (HTTP/0.9 is not supported)' },
  ISG_ERR_HTTP_VERSION: { status: 505, message: 'HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)' },
  ISG_ERR_MISSING_HOST: { status: 400, message: 'an HTTP/1.1 request must have a Host header' },
  ISG_ERR_DUPLICATE_HOST: { status: 400, message: 'the request has more than one Host header' },
  ISG_ERR_HOST_MISMATCH: { status: 400, message: 'the Host header disagrees with the host of the absolute-form request target' },
  ISG_ERR_UPSTREAM_UNAVAILABLE: { status: 502, message: 'the upstream service could not be reached' },
  ISG_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'the upstream service sent an invalid response' },
  ISG_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream service did not answer in time' },
  ISG_ERR_PLUGIN_FAILED: { status: 500, message: 'a plugin failed while handling this request' },
  ISG_ERR_PLUGIN_TIMEOUT: { status: 504, message: 'a plugin ran out of time waiting on an async call (cache, counters, http)' },
  ISG_ERR_PLUGIN_UNAVAILABLE: { status: 503, message: 'a plugin of this route is temporarily disabled' },
  ISG_ERR_TENANT_THROTTLED: { status: 503, message: 'this tenant exceeded its plugin CPU budget' },
  ISG_ERR_INTERNAL: { status: 500, message: 'internal gateway error' },
  // The admin API (core/admin-api/): its messages usually carry the detail (field path, entity).
  ISG_ERR_ADMIN_UNAUTHORIZED: { status: 401, message: 'the admin API needs a valid bearer token (Authorization: Bearer <token>)' },
  ISG_ERR_ADMIN_FORBIDDEN: { status: 403, message: 'this token may not make this change' },
  ISG_ERR_ADMIN_READ_ONLY: { status: 403, message: 'the admin API is read-only: no admin token is configured (add admin.tokens with the sha256 of a token to the config, then send it as Authorization: Bearer <token>)' },
  ISG_ERR_ADMIN_NOT_FOUND: { status: 404, message: 'no such admin API resource' },
  ISG_ERR_ADMIN_METHOD: { status: 405, message: 'this admin API resource does not answer this method' },
  ISG_ERR_ADMIN_BAD_BODY: { status: 400, message: 'the request body is not a JSON object' },
  ISG_ERR_ADMIN_INVALID: { status: 400, message: 'the change would make an invalid config; nothing was changed' },
  ISG_ERR_ADMIN_CONFLICT: { status: 409, message: 'the change conflicts with the config (a name in use, or a host and path another route claims)' },
  ISG_ERR_ADMIN_STALE: { status: 412, message: 'If-Match does not name the current config version (ETag): someone changed it; read it again' },
  ISG_ERR_ADMIN_STORE: { status: 500, message: 'the config file could not be read, validated or written' },
  ISG_ERR_ADMIN_UNAVAILABLE: { status: 503, message: 'the cluster config store (Redis) cannot be reached: changes are refused until it is back; the node keeps serving its config' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** JSON body of an error response: `{"error":{"code","message","id"?}}`. */
export function errorBody(code: ErrorCode, id?: string): string {
  const e = ERRORS[code];
  return JSON.stringify({ error: id === undefined ? { code, message: e.message } : { code, message: e.message, id } });
}

/** Thrown for a config file that cannot be used; the message names the file and the field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly details: readonly string[];
  constructor(file: string, details: readonly string[]) {
    super(`${file}: invalid config\n  ${details.join('\n  ')}`);
    this.file = file;
    this.details = details;
  }
}

/** Static error bodies are encoded once. */
const STATIC_ERRORS = new Map<ErrorCode, Buffer>(
  (Object.keys(ERRORS) as ErrorCode[]).map((code) => [code, Buffer.from(errorBody(code))]),
);

/** Answers with a gateway error; returns the headers sent (null: too late, the connection was destroyed). */
export function sendError(res: ServerResponse, code: ErrorCode, errorId?: string): Record<string, string> | null {
  if (res.headersSent) {
    res.destroy();
    return null;
  }
  const body = errorId === undefined ? STATIC_ERRORS.get(code)! : Buffer.from(errorBody(code, errorId));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
  if (errorId !== undefined) headers['x-isogate-error-id'] = errorId;
  res.writeHead(ERRORS[code].status, headers);
  res.end(body);
  return headers;
}

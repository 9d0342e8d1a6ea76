/**
 * The one catalogue of errors the gateway returns to clients. Each code is stable (clients
 * and dashboards may match on it), has the HTTP status it is sent with and a message that
 * never carries host details. test/core/errors.test.ts pins that codes are unique and
 * documented in the README.
 */
export const ERRORS = {
  ISG_ERR_NO_ROUTE: { status: 404, message: 'no route matches this request' },
  ISG_ERR_BAD_REQUEST: { status: 400, message: 'malformed request' },
  ISG_ERR_UPSTREAM_UNAVAILABLE: { status: 502, message: 'the upstream service could not be reached' },
  ISG_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'the upstream service sent an invalid response' },
  ISG_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream service did not answer in time' },
  ISG_ERR_PLUGIN_FAILED: { status: 500, message: 'a plugin failed while handling this request' },
  ISG_ERR_PLUGIN_UNAVAILABLE: { status: 503, message: 'a plugin of this route is temporarily disabled' },
  ISG_ERR_TENANT_THROTTLED: { status: 503, message: 'this tenant exceeded its plugin CPU budget' },
  ISG_ERR_INTERNAL: { status: 500, message: 'internal gateway error' },
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

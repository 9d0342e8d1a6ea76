import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's request-termination: answers every request (or those carrying `trigger`) itself,
 * with `status_code` and either `message` (as {"message": ...}), a raw `body` of
 * `content_type`, or, with `echo`, a JSON copy of the request for debugging.
 */
type Config = { status_code: number; message?: string; body?: string; content_type?: string; echo: boolean; trigger?: string };

export const name = 'request-termination';
export const version = '1.0.0';
export const priority = 2; // Kong's: after every other plugin, so auth and limits still answer first

/** Kong's messages for a status when `message` is not set; other statuses get no body. */
const DEFAULT_MESSAGE: Readonly<Record<number, string>> = {
  401: 'Unauthorized',
  404: 'Not found',
  405: 'Method not allowed',
  500: 'An unexpected error occurred',
  502: 'Bad Gateway',
  503: 'Service unavailable',
};

const JSON_TYPE = 'application/json; charset=utf-8';

export function access(pdk: Pdk, config: Config): void {
  const status = config.status_code;
  if (config.trigger !== undefined && pdk.request.getHeader(config.trigger) === undefined && pdk.request.getQueryArg(config.trigger) === undefined) return;
  const message = config.message ?? DEFAULT_MESSAGE[status];
  if (config.echo) {
    // Kong's echo also has request.body and raw_body: the PDK does not carry the request body yet.
    pdk.response.exit(status, {
      message: message ?? null,
      request: {
        scheme: pdk.request.getScheme(),
        host: pdk.request.getHost(),
        port: pdk.request.getPort(),
        headers: pdk.request.getHeaders(),
        query: pdk.request.getQuery(),
        method: pdk.request.getMethod(),
        path: pdk.request.getPath(),
      },
      matched_route: pdk.router.getRoute(),
      matched_service: pdk.router.getService(),
    });
  }
  if (config.body !== undefined) pdk.response.exit(status, config.body, { 'Content-Type': config.content_type ?? JSON_TYPE });
  pdk.response.exit(status, message === undefined ? null : { message });
}

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { OpTarget } from '../pdk-bridge/host/ops.ts';
import type { RuntimeRoute } from './route.ts';

/** Errors of a connection that never carried a response: a request without a body may be sent again (service retries). */
const RETRYABLE: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

export function retryable(code: string | undefined): boolean {
  return code !== undefined && RETRYABLE.has(code);
}

/**
 * service.setTimeouts' connect timeout, rounded up to a step: pools are per origin and
 * connect timeout (undici sets it per pool), so the steps bound the pools a plugin can make.
 */
const CONNECT_STEPS = [250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];
export function connectStep(ms: number): number {
  for (const s of CONNECT_STEPS) if (ms <= s) return s;
  return CONNECT_STEPS[CONNECT_STEPS.length - 1];
}

/**
 * Sends the request upstream: to the route's service, or where the plugins said
 * (service.setTarget, already checked against the service's targets; setScheme;
 * setTimeouts; setMethod). The route's own pool unless one of those changed it. Returns
 * the "host:port" it went to.
 */
export function dispatchUpstream(route: RuntimeRoute, target: OpTarget, method: string, path: string, body: Dispatcher.DispatchOptions['body'] | IncomingMessage | null, handler: Dispatcher.DispatchHandler): string {
  const service = route.service;
  const timeouts = target.timeouts ?? null;
  const upstream = target.upstream ?? null;
  const scheme = target.scheme ?? null;
  const at = upstream ?? service.targets[0];
  let pool = route.pool;
  if (upstream !== null || (scheme !== null && scheme !== 'http') || timeouts !== null) {
    pool = route.poolFor(`${scheme ?? 'http'}://${at}`, timeouts === null ? service.connectTimeoutMs : connectStep(timeouts[0]));
    const headers = target.upstreamHeaders;
    // As Kong: without preserveHost, the Host sent is the chosen target's.
    if (upstream !== null && !service.preserveHost && headers.host === service.hostHeader) headers.host = upstream.endsWith(':80') ? upstream.slice(0, -3) : upstream;
  }
  const readMs = timeouts === null ? service.timeoutMs : timeouts[2];
  pool.dispatch(
    {
      path,
      method: (target.method ?? method) as Dispatcher.HttpMethod,
      headers: target.upstreamHeaders as IncomingHttpHeaders,
      body,
      headersTimeout: readMs,
      bodyTimeout: readMs,
    },
    handler,
  );
  return at;
}

// In-isolate runtime: pdk.service, how the request reaches the route's service. Each call
// is an operation the host checks again (pdk-bridge/host/ops.ts): setTarget reaches only
// the service's own host:port and the `targets` the operator listed for it.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import type { PdkService } from '../types.ts';
import { $freeze, checkPhase, emit, realm, str } from './prelude.ts';

// Access only (Kong's): in rewrite the route, so the service, is not chosen yet.
const SERVICE_KNOWN = PHASES.masks.SERVICE_KNOWN;

function integer(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || (v | 0) !== v || v < min || v > max) throw new realm.RangeError(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

export const pdkService = $freeze({
  /**
   * Sends the request to `host`:`port` instead of the service's url: only to one the
   * service lists (its url's host and port, or its `targets`); any other fails the request
   * (the host refuses the operation: bad_return).
   */
  setTarget(host: unknown, port: unknown) {
    checkPhase('service.setTarget', SERVICE_KNOWN);
    const h = str(host, 'service.setTarget host');
    if (h.length === 0 || h.length > 255) throw new realm.TypeError('service.setTarget host must be 1 to 255 characters');
    emit(['sv.target', h, integer(port, 1, 65535, 'service.setTarget port')], h.length);
  },
  /** Retries of a request without a body whose connection failed before any response (0 to CAPS.maxRetries). */
  setRetries(retries: unknown) {
    checkPhase('service.setRetries', SERVICE_KNOWN);
    emit(['sv.retries', integer(retries, 0, CAPS.maxRetries, 'service.setRetries retries')], 0);
  },
  /**
   * Timeouts in ms: connect (rounded up to a step, see README), write (kept for
   * log.serialize: undici has no write timeout), read (headers, and between body chunks).
   */
  setTimeouts(connect: unknown, write: unknown, read: unknown) {
    checkPhase('service.setTimeouts', SERVICE_KNOWN);
    emit(['sv.timeouts',
      integer(connect, 1, CAPS.maxConnectTimeoutMs, 'service.setTimeouts connect timeout'),
      integer(write, 1, CAPS.maxTimeoutMs, 'service.setTimeouts write timeout'),
      integer(read, 1, CAPS.maxTimeoutMs, 'service.setTimeouts read timeout')], 0);
  },
} satisfies PdkService);

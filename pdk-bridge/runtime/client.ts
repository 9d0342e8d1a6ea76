// In-isolate runtime: pdk.client, who is on the other end (reads of the request snapshot).
// Kong's semantics: getIp/getPort are the peer's; getForwardedIp believes X-Forwarded-For
// only from a trusted proxy (proxy.trustedProxies), and then takes its last entry, the
// address that proxy saw (nginx realip with real_ip_recursive off).
import type { PdkClient } from '../types.ts';
import { $apply, $freeze, $isArray, $lastIndexOf, $slice, $test, $toLower, $trim, ANY_PHASE, checkPhase, request } from './prelude.ts';
import { firstValue } from './request.ts';
import { pdkClientConsumer } from './client-consumer.ts';

const IP_LIKE = /^[0-9A-Fa-f:.]{2,45}$/;

export const pdkClient = $freeze({
  getIp() { checkPhase('client.getIp', ANY_PHASE); return request().ip; },
  getForwardedIp() {
    checkPhase('client.getForwardedIp', ANY_PHASE);
    const r = request();
    if (r.tr !== 1) return r.ip;
    let xff = r.h['x-forwarded-for'];
    if (xff === undefined) return r.ip;
    if ($isArray(xff)) xff = xff[xff.length - 1];
    const comma = $apply($lastIndexOf, xff, [',']);
    const last = $apply($trim, comma < 0 ? xff : $apply($slice, xff, [comma + 1]), []);
    return $apply($test, IP_LIKE, [last]) ? last : r.ip;
  },
  getPort() { checkPhase('client.getPort', ANY_PHASE); return request().cp; },
  /** No header carries the client's port (and PROXY protocol is not spoken): the peer's port, as Kong without PROXY protocol. */
  getForwardedPort() { checkPhase('client.getForwardedPort', ANY_PHASE); return request().cp; },
  /**
   * 'http' (the gateway terminates no TLS itself). With `allowTerminated`, the protocol a
   * trusted proxy in front says it terminated (X-Forwarded-Proto: http or https).
   */
  getProtocol(allowTerminated?: unknown) {
    checkPhase('client.getProtocol', ANY_PHASE);
    const r = request();
    if (allowTerminated === true && r.tr === 1) {
      const v = firstValue(r.h['x-forwarded-proto']);
      if (v !== undefined) {
        const p = $apply($toLower, v, []);
        if (p === 'https' || p === 'http') return p;
      }
    }
    return r.s;
  },
  ...pdkClientConsumer,
} satisfies PdkClient);

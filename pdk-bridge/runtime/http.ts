// In-isolate runtime: pdk.http, outbound requests from plugins, to the hosts the operator
// allows the tenant (and the plugin declares). Async: each call crosses (async.ts).
import type { PdkHttp } from '../types.ts';
import { $create, $freeze, $keys, header, list, realm, str } from './prelude.ts';
import { ASYNC_PHASES, asyncCall, num, shortStr } from './async.ts';

export const pdkHttp = $freeze({
  /**
   * request(url, { method, headers, body, timeoutMs }) -> { status, headers, body }.
   * headers: an object of string values; body: a string.
   */
  request(url: unknown, opts?: any) {
    const a = list();
    a[0] = shortStr(url, 'url', 8192);
    const o: Record<string, unknown> = $create(null);
    if (opts !== undefined && opts !== null) {
      const m = opts.method, h = opts.headers, b = opts.body, t = opts.timeoutMs;
      if (m !== undefined) o.method = str(m, 'method');
      if (b !== undefined && b !== null) o.body = str(b, 'body');
      if (t !== undefined) o.timeoutMs = num(t, 'timeoutMs', 0);
      if (h !== undefined && h !== null) {
        const hs: Record<string, string> = $create(null);
        const names = $keys(h);
        if (names.length > CAPS.maxExitHeaders) throw new realm.RangeError(`http.request with ${names.length} headers, more than ${CAPS.maxExitHeaders}`);
        for (let i = 0; i < names.length; i++) hs[names[i]] = header(names[i], h[names[i]], 'http.request');
        o.headers = hs;
      }
    }
    a[1] = o;
    return asyncCall('http.request', ASYNC_PHASES, 'http', 'request', a, false);
  },
} satisfies PdkHttp);

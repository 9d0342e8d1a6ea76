import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import { ASYNC_CAPS } from '../../../sandbox/limits.ts';
import { ASYNC_PHASES } from '../phases.ts';
import { argNumber, argString, ServiceError, type Service } from './types.ts';

const METHOD = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/;
/** Headers undici or the connection own: a plugin setting them could smuggle a second request. */
const REFUSED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);

/** Loopback, link-local, unspecified and IPv4-mapped forms of them: never reached through a name. */
export function specialAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  if (isIP(a) === 4) return a.startsWith('127.') || a.startsWith('169.254.') || a.startsWith('0.');
  return a === '::1' || a === '::' || a.startsWith('fe8') || a.startsWith('fe9') || a.startsWith('fea') || a.startsWith('feb');
}

/**
 * The undici agent of one tenant's outbound calls. Its lookup checks the addresses a name
 * resolves to, at connect time (so a name cannot be re-pointed after a check): a loopback
 * or link-local address only when the operator listed it (`listed`: addresses listed, for
 * any port; the port is not known here, checkResolved saw it before).
 */
export function outboundAgent(listed: ReadonlySet<string>): Agent {
  return new Agent({
    connections: 16,
    connect: {
      lookup(hostname, options, cb) {
        lookup(hostname, { ...options, all: true }, (err, addresses) => {
          if (err !== null) return cb(err, []);
          const list = addresses as { address: string; family: number }[];
          const bad = list.find((a) => specialAddress(a.address) && !listed.has(a.address));
          if (bad !== undefined) return cb(Object.assign(new Error(`http.request: ${hostname} resolves to ${bad.address}, a loopback or link-local address the allowlist does not name`), { code: 'ISG_REFUSED_ADDRESS' }), []);
          if ((options as { all?: boolean }).all === true) cb(null, list);
          else (cb as unknown as (e: null, a: string, f: number) => void)(null, list[0].address, list[0].family);
        });
      },
    },
  });
}

/**
 * A name must not lead to a loopback or link-local address unless the operator listed that
 * address (for this port, or for any). The agent's lookup checks again at connect time.
 */
async function checkResolved(url: URL, explicit: ReadonlySet<string>): Promise<void> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0) return; // an address literal was matched against the allowlist itself
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  const list = await new Promise<{ address: string }[]>((resolve, reject) => lookup(host, { all: true }, (err, a) => (err === null ? resolve(a) : reject(new ServiceError(`http.request: ${host} does not resolve (${err.code})`)))));
  for (const a of list) {
    if (specialAddress(a.address) && !explicit.has(a.address) && !explicit.has(`${a.address}:${port}`)) {
      throw new ServiceError(`http.request: ${host} resolves to ${a.address}, a loopback or link-local address the allowlist does not name`);
    }
  }
}

/** The hosts of an allowlist entry list: "name" (any port) or "name:port", lowercase. */
function allowed(allow: ReadonlySet<string>, url: URL): boolean {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return allow.has(host) || allow.has(`${host}:${port}`);
}

/** pdk.http (pdk-bridge/runtime/http.ts): only to the tenant's allowed hosts, within the caller's wall time. */
export const httpService: Service = {
  name: 'http',
  methods: {
    request: {
      phases: ASYNC_PHASES,
      async run(args, cc) {
        if (++cc.http.n > ASYNC_CAPS.maxHttpCalls) throw new ServiceError(`http.request: more than ${ASYNC_CAPS.maxHttpCalls} calls in one phase`);
        let url: URL;
        try {
          url = new URL(argString(args[0], 'url', 8192));
        } catch (err) {
          if (err instanceof ServiceError) throw err;
          throw new ServiceError('http.request: the url is not a valid absolute URL');
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServiceError('http.request: only http and https URLs');
        if (url.username !== '' || url.password !== '') throw new ServiceError('http.request: no credentials in the URL');
        const allow = cc.services.httpAllow[cc.instance];
        if (allow === undefined || !allowed(allow, url)) throw new ServiceError(`http.request: host ${url.host} is not in this tenant's allowlist`);
        const o = (args[1] ?? {}) as { method?: unknown; headers?: unknown; body?: unknown; timeoutMs?: unknown };
        const method = o.method === undefined ? 'GET' : argString(o.method, 'method', 16).toUpperCase();
        if (!METHOD.test(method)) throw new ServiceError(`http.request: method ${method} is not allowed`);
        const headers: Record<string, string> = {};
        if (o.headers !== undefined && o.headers !== null && typeof o.headers === 'object') {
          for (const [k, v] of Object.entries(o.headers as Record<string, unknown>)) {
            const name = k.toLowerCase();
            if (REFUSED_HEADERS.has(name)) throw new ServiceError(`http.request: header ${name} is the gateway's`);
            headers[name] = argString(v, `header ${name}`, 16384);
          }
        }
        // Past the caller's wall time the host answers `timeout` itself: the request's own
        // timer is set a little later, so the wall time, not a race, decides the fault.
        await checkResolved(url, cc.services.httpExplicit);
        const left = cc.deadline - performance.now() + 50;
        const timeoutMs = Math.max(1, Math.ceil(Math.min(left, o.timeoutMs === undefined ? left : argNumber(o.timeoutMs, 'timeoutMs', 1, 600000))));
        const body = o.body === undefined ? undefined : argString(o.body, 'body', ASYNC_CAPS.maxHttpResponseBytes);
        try {
          const res = await request(url, {
            method: method as 'GET',
            headers,
            body,
            dispatcher: cc.services.httpAgent,
            signal: AbortSignal.timeout(timeoutMs),
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
          });
          const chunks: Buffer[] = [];
          let size = 0;
          for await (const chunk of res.body) {
            size += (chunk as Buffer).length;
            if (size > ASYNC_CAPS.maxHttpResponseBytes) {
              res.body.destroy();
              throw new ServiceError(`http.request: response body larger than ${ASYNC_CAPS.maxHttpResponseBytes} bytes`);
            }
            chunks.push(chunk as Buffer);
          }
          const hs: Record<string, string> = {};
          let n = 0;
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined || ++n > ASYNC_CAPS.maxHttpResponseHeaders) continue;
            hs[k] = Array.isArray(v) ? v.join(', ') : v;
          }
          return JSON.stringify({ status: res.statusCode, headers: hs, body: Buffer.concat(chunks).toString('utf8') });
        } catch (err) {
          if (err instanceof ServiceError) throw err;
          const e = err as { name?: string; code?: string; message?: string };
          if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') throw new ServiceError(`http.request: timed out after ${Math.round(timeoutMs)} ms`);
          if (e.code === 'ISG_REFUSED_ADDRESS') throw new ServiceError(String(e.message));
          throw new ServiceError(`http.request: ${e.code ?? 'failed'}: ${String(e.message).slice(0, 200)}`);
        }
      },
    },
  },
};

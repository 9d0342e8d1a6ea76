import type { Pdk } from '../types.ts';

/**
 * Kong's JavaScript plugins, unmodified: turns a kong-js-pdk module
 * (`module.exports = { Plugin, Schema, Version, Priority, Name? }`, a class whose async phase
 * methods take `kong`) into an Isogate plugin module. It is bundled into the plugin by the
 * loader (sandbox/plugin-loader.ts) and runs in the plugin's own realm, against the public
 * PDK only: no privilege the plugin did not already have.
 *
 * Every `kong.*` call returns a promise, as over kong-js-pdk's RPC, but settles at once: the
 * reads come from the snapshot already in the isolate, the writes are PDK operations. A call
 * that Isogate does not carry (yet) rejects with kong-js-pdk's PDKError, naming it.
 */
type AnyFn = (...args: unknown[]) => unknown;
type Namespace = Record<string, AnyFn | object>;
type KongModule = { Plugin: new (config: unknown) => Record<string, unknown>; Name?: unknown; Version?: unknown; Priority?: unknown };

/** Kong's own error class for PDK failures (kong-js-pdk: `kong.Error`, name "PDKError"). */
class PDKError extends Error {
  override get name(): string {
    return 'PDKError';
  }
}

const resolved = <T>(v: T): Promise<T> => Promise.resolve(v);
const failed = (method: string, why: string): Promise<never> => Promise.reject(new PDKError(`PDK method ${method} failed: ${why}`));

/** kong-js-pdk's name for a method: camelCase as Kong's snake_case (what its errors quote). */
const snake = (name: string): string => name.replace(/[a-z][A-Z]/g, (s) => `${s[0]}_${s[1].toLowerCase()}`);

/**
 * A namespace whose known methods run `impl` (a throw becomes a rejection) and whose other
 * methods reject as "not supported". `then` stays undefined, so awaiting a namespace does not
 * take it for a promise.
 */
function namespace(path: string, impl: Namespace): object {
  const calls = new Map<string, AnyFn>();
  return new Proxy(Object.create(null) as object, {
    get(_t, key) {
      if (typeof key !== 'string' || key === 'then') return undefined;
      const own = Object.hasOwn(impl, key) ? impl[key] : undefined;
      if (own !== undefined && typeof own === 'object') return own;
      let fn = calls.get(key);
      if (fn === undefined) {
        const method = `${path}.${snake(key)}`;
        const impl = typeof own === 'function' ? (own as AnyFn) : null;
        fn =
          impl !== null
            ? (...args: unknown[]) => {
                try {
                  return resolved(impl(...args));
                } catch (e) {
                  if (isExit(e)) throw e;
                  return failed(method, e instanceof Error ? e.message : String(e));
                }
              }
            : () => failed(method, 'not supported by Isogate (see pdk-bridge/README.md, Kong JS plugins)');
        calls.set(key, fn);
      }
      return fn;
    },
  });
}

// pdk.response.exit ends the handler by throwing the PDK's exit marker (an object with no
// prototype). Kong's exit does not return either; the adapter lets it through.
const isExit = (e: unknown): boolean => e !== null && typeof e === 'object' && Object.getPrototypeOf(e) === null;

function exitBody(body: unknown): string | object | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || typeof body === 'object') return body as string | object;
  return String(body);
}

/** The kong-js-pdk phase running now (calls into one isolate never overlap). */
let phaseNow = '';

/**
 * kong.response.exit: before the upstream, the PDK's exit; in the `response` phase Kong's
 * way to replace the response, which the PDK does with setStatus, setHeaders and setRawBody.
 */
function exitFor(pdk: Pdk, status: unknown, body: unknown, headers: unknown): void {
  const res = pdk.response;
  if (phaseNow !== 'response') return res.exit(status as number, exitBody(body), (headers ?? undefined) as Record<string, string>);
  if (status !== res.getStatus()) res.setStatus(status as number);
  if (headers !== undefined && headers !== null) res.setHeaders(headers as Record<string, string>);
  const b = exitBody(body);
  res.setRawBody(b === null ? '' : typeof b === 'string' ? b : JSON.stringify(b));
}

/** The functions of a PDK namespace (absent on an older runtime: none), with `overrides`. */
function from(ns: object | undefined, overrides: Namespace = {}): Namespace {
  return { ...(ns as Namespace | undefined), ...overrides };
}

/**
 * The `kong` object of one module's PDK (one per module: its pdk never changes). Where
 * kong-js-pdk's name is the PDK's (Kong's camelCased), the PDK function serves it as it is.
 */
function kongOf(pdk: Pdk): object {
  const req = pdk.request;
  const res = pdk.response;
  const log = pdk.log;
  return Object.freeze({
    Error: PDKError,
    request: namespace('kong.request', from(req, {
      getHeader: (n) => {
        const v = req.getHeader(n as string);
        return Array.isArray(v) ? v[0] : v; // Kong: the first value of a repeated header
      },
    })),
    client: namespace('kong.client', from(pdk.client)),
    response: namespace('kong.response', from(res, {
      exit: (status, body, headers) => exitFor(pdk, status, body, headers),
      error: (status, message, headers) =>
        phaseNow === 'response' ? exitFor(pdk, status, { message: message ?? 'An unexpected error occurred' }, headers) : res.error(status as number, message as string | undefined, (headers ?? undefined) as Record<string, string>),
    })),
    service: namespace('kong.service', from(pdk.service, {
      request: namespace('kong.service.request', from(pdk.serviceRequest)),
      response: namespace('kong.service.response', from(pdk.serviceResponse)),
    })),
    log: namespace('kong.log', {
      alert: (...a) => log.error(...a),
      crit: (...a) => log.error(...a),
      err: (...a) => log.error(...a),
      warn: (...a) => log.warn(...a),
      deprecation: (...a) => log.warn(...a),
      notice: (...a) => log.info(...a),
      info: (...a) => log.info(...a),
      debug: (...a) => log.debug(...a),
      ...(typeof log.serialize === 'function' ? { serialize: () => log.serialize(), setSerializeValue: (k, v, o) => log.setSerializeValue(k as string, v, o as { mode?: 'set' }) } : {}),
    }),
    ctx: namespace('kong.ctx', {
      shared: namespace('kong.ctx.shared', { get: (k) => pdk.ctx.get(k as string), set: (k, v) => pdk.ctx.set(k as string, v) }),
    }),
    node: namespace('kong.node', from(pdk.node)),
    router: namespace('kong.router', from(pdk.router)),
    nginx: namespace('kong.nginx', {}),
    ip: namespace('kong.ip', {}),
    cluster: namespace('kong.cluster', {}),
    vault: namespace('kong.vault', {}),
    plugin: namespace('kong.plugin', {}),
    telemetry: namespace('kong.telemetry', {}),
  });
}

/** kong-js-pdk phase -> Isogate handler (the same names: `response` is buffered, as Kong's). */
const PHASES = { rewrite: 'rewrite', access: 'access', response: 'response', log: 'log' } as const;
const UNSUPPORTED = ['certificate', 'preread'] as const;

/**
 * The Isogate module for a kong-js-pdk module, or the module itself when it is not one.
 * `fallbackName` is the file's base name (kong-js-pdk's default when there is no `Name`).
 */
export function adaptKongModule(mod: unknown, fallbackName: string): unknown {
  if (mod === null || typeof mod !== 'object' || typeof (mod as KongModule).Plugin !== 'function') return mod;
  const k = mod as KongModule;
  const proto = k.Plugin.prototype as Record<string, unknown>;
  for (const p of UNSUPPORTED) {
    if (typeof proto[p] === 'function') throw new Error(`Kong JS plugin: the ${p} phase is not supported by Isogate`);
  }
  // One plugin object per config, as kong-js-pdk makes one per plugin instance.
  const instances = new WeakMap<object, Record<string, unknown>>();
  let kong: object | null = null;
  let kongPdk: Pdk | null = null;
  const out: Record<string, unknown> = {
    name: (typeof k.Name === 'string' ? k.Name : fallbackName).toLowerCase(),
    version: typeof k.Version === 'string' && k.Version !== '' ? k.Version : '0.0.0',
    priority: typeof k.Priority === 'number' && Number.isInteger(k.Priority) ? k.Priority : 0,
  };
  for (const [phase, handler] of Object.entries(PHASES)) {
    if (typeof proto[phase] !== 'function') continue;
    out[handler] = (pdk: Pdk, config: object): unknown => {
      let plugin = instances.get(config);
      if (plugin === undefined) instances.set(config, (plugin = new k.Plugin(config)));
      if (kongPdk !== pdk) {
        kong = kongOf(pdk);
        kongPdk = pdk;
      }
      phaseNow = phase;
      return (plugin[phase] as (kong: object) => unknown)(kong!);
    };
  }
  return Object.freeze(out);
}

// kong-js-pdk plugins run in Node and may read process.pid (its examples do): a stand-in
// with a fixed pseudo pid, nothing of the host's process.
if (typeof (globalThis as { process?: unknown }).process === 'undefined') {
  Object.defineProperty(globalThis, 'process', { value: Object.freeze({ pid: 1 + Math.floor(Math.random() * 32767), env: Object.freeze({}) }), configurable: true });
}

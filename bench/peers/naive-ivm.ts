import { createServer, type OutgoingHttpHeaders } from 'node:http';
import { parseArgs } from 'node:util';
import ivm from 'isolated-vm';
import { serve, strip, upstreamDone, upstreamPool } from './lean-parts.ts';

/**
 * The naive isolated-vm gateway Isogate's bridge was built to beat: the lean proxy of
 * node-proxy.ts, plus one isolate per plugin and one timed call per plugin per phase
 * (`applySync` with a timeout: isolated-vm's own watchdog). Each call passes the request
 * header in (a primitive) and copies the header to set out ([name, value]), checked on the
 * host. Same work as bench/plugins/header.ts; nothing else (no routing, no tenants).
 * `--plugins 0` is this peer's own baseline for the per-plugin cost.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' }, plugins: { type: 'string', default: '0' } } });
const pool = upstreamPool(values.upstream!);
const TIMEOUT_MS = 50;
const MAX_VALUE = 8192;

const PLUGIN = (n: number) => `
const n = ${n};
function access(v) { return ['x-bench-' + n + '-access', typeof v === 'string' ? v : 'none']; }
function headerFilter(v) { return ['x-bench-' + n + '-filter', typeof v === 'string' ? v : 'none']; }
`;

type Plugin = { access: ivm.Reference<(v: unknown) => unknown>; headerFilter: ivm.Reference<(v: unknown) => unknown> };
const plugins: Plugin[] = [];
for (let i = 1; i <= Number(values.plugins); i++) {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = isolate.createContextSync();
  isolate.compileScriptSync(PLUGIN(i)).runSync(context, { timeout: 1000 });
  plugins.push({ access: context.global.getSync('access', { reference: true }), headerFilter: context.global.getSync('headerFilter', { reference: true }) });
}
const CALL = { timeout: TIMEOUT_MS, result: { copy: true } } as const;

/** The host never trusts what plugin code returned: two bounded strings or nothing. */
function header(out: unknown, into: OutgoingHttpHeaders): void {
  if (!Array.isArray(out) || out.length !== 2) return;
  const [k, v] = out as unknown[];
  if (typeof k === 'string' && typeof v === 'string' && k.length <= 256 && v.length <= MAX_VALUE) into[k.toLowerCase()] = v;
}

const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0 }, (req, res) => {
  // Only a primitive crosses as is (x-bench is never an array in node:http; the type allows it).
  const h = req.headers['x-bench'];
  const v = typeof h === 'string' ? h : undefined;
  const set: OutgoingHttpHeaders = {};
  try {
    for (const p of plugins) header(p.access.applySync(undefined, [v], CALL), set);
  } catch {
    res.writeHead(500);
    res.end();
    return;
  }
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { path: req.url!, method: req.method as 'GET', headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      const out: OutgoingHttpHeaders = strip(headers);
      try {
        for (const p of plugins) header(p.headerFilter.applySync(undefined, [v], CALL), set);
      } catch {
        statusCode = 500;
      }
      res.writeHead(statusCode, Object.assign(out, set));
      return res;
    },
    upstreamDone(res),
  );
});
serve(server, pool, Number(values.port));

/**
 * The benchmark suite: what a plugin costs, side by side with the alternatives.
 * `npm run bench` (full), `npm run bench -- --quick`, `--smoke`; `--help` lists the flags.
 * See bench/README.md for the scenarios and how to read the report.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Pool, request as undiciRequest } from 'undici';
import { parseFlags, USAGE, type Flags } from './lib/args.ts';
import { keepMainThreadProfiles } from './lib/cpuprofile.ts';
import { bodyFilterConfig, chainConfig, multiConfig, noisyConfig, noisyManyConfig, rateLimitConfig, REALISTIC_KEY, realisticChainConfig, solo2msConfig, tenantsConfig } from './lib/configs.ts';
import { AutocannonGen, WrkGen, type LoadGen, type LoadResult, type LoadSpec } from './lib/loadgen.ts';
import { ROOT, hostId, machineInfo } from './lib/machine.ts';
import {
  HAS_TASKSET, allowedCpus, cpuBusySeconds, freePort, loadAvg, killAllSync, pause, pinSelf, resume, rssBytes, sleep, start, stop, stopAll, treeCpu, waitPort, which, type Proc,
} from './lib/procs.ts';
import { Progress } from './lib/progress.ts';
import { OPENRESTY_CHAINS, openrestyConfig, openrestyPath } from './peers/openresty.ts';
import { probeHeaderPlugins } from './peers/probe.ts';
import { writeReport, type ColdRound, type RunData, type Sample, type ScenarioRow, type TargetData } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

let flags: Flags | null;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (flags === null) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const F: Flags = flags;

// --- cleanup: every process we start dies with us -------------------------------------
let aborting = false;
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (aborting) {
      killAllSync();
      process.exit(130);
    }
    aborting = true;
    process.stderr.write(`\n${sig}: stopping every process the bench started...\n`);
    void stopAll().finally(() => process.exit(130));
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  killAllSync();
  process.exit(1);
});

const NODE = process.execPath;
const t0 = Date.now();
const date = new Date().toISOString().slice(0, 10);
const outDir = resolve(F.out ?? join(ROOT, 'bench', 'results', `${date}-${hostId()}${F.mode === 'full' ? '' : `-${F.mode}`}`));
const cfgDir = join(outDir, 'configs');
mkdirSync(cfgDir, { recursive: true });

// --- cores ---------------------------------------------------------------------------
const allowed = allowedCpus();
const pinning = HAS_TASKSET && allowed.length >= 2;
const gwCpus = pinning ? [allowed[0]] : null;
const loadCpus = pinning ? allowed.slice(1) : null;
const allCpus = HAS_TASKSET ? allowed : null;
if (loadCpus !== null) pinSelf(loadCpus);
const threads = F.threads > 0 ? F.threads : Math.max(1, Math.floor((loadCpus?.length ?? 1) / 2));

const wrkPath = which('wrk');
const nginxPath = which('nginx');
const tool: 'wrk' | 'autocannon' = F.loadgen === 'wrk' || (F.loadgen === 'auto' && wrkPath !== null) ? 'wrk' : 'autocannon';
if (tool === 'wrk' && wrkPath === null) {
  process.stderr.write('--loadgen wrk: wrk is not on the PATH\n');
  process.exit(2);
}
const workersSupported = /--workers/.test(spawnSync(NODE, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--help'], { encoding: 'utf8', cwd: ROOT }).stdout ?? '');

const want = (s: string) => F.only === null || F.only.includes(s);
const progress = new Progress(process.stderr);

// --- upstream ------------------------------------------------------------------------
const upstreamPort = await freePort();
const upstreamProc = start({
  name: 'upstream',
  cmd: NODE,
  args: [join(ROOT, 'bench', 'upstream.ts'), '--port', String(upstreamPort)],
  cpus: loadCpus,
  onLine: (l) => {
    if (l.startsWith('count ')) progress.count(Number(l.slice(6)));
  },
});
await waitPort(upstreamPort, upstreamProc);
const UPSTREAM = `http://127.0.0.1:${upstreamPort}`;

const gens = new Map<string, LoadGen>();
function gen(key: 'main' | 'noise' | 'unpinned'): LoadGen {
  let g = gens.get(key);
  if (g === undefined) {
    const cpus = key === 'unpinned' ? allCpus : loadCpus;
    g = tool === 'wrk' ? new WrkGen(cpus, cfgDir) : new AutocannonGen(cpus);
    gens.set(key, g);
  }
  return g;
}

// --- servers -------------------------------------------------------------------------
/** adminPort: a gateway under a supervisor, whose /status gives the requests each worker received. */
type Server = { name: string; port: number; proc: Proc | null; pid: number; children: boolean; rssAtStart: number; pinned: boolean; adminPort?: number };
type ServerDef = { name: string; start(): Promise<Server>; warm?(s: Server): Promise<void> };

async function startNode(name: string, script: string, args: string[], cpus: readonly number[] | null, opts: { children?: boolean; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<Server> {
  const port = await freePort();
  const proc = start({
    name,
    cmd: NODE,
    args: [...(opts.nodeArgs ?? []), script, ...args.map((a) => a.replace('{port}', String(port)))],
    cpus,
    cwd: ROOT,
    env: { ISOGATE_LOG_LEVEL: 'silent', ...opts.env },
  });
  await waitPort(port, proc);
  return { name, port, proc, pid: proc.pid, children: opts.children === true, rssAtStart: rssBytes(proc.pid, opts.children === true), pinned: cpus !== null && cpus !== allCpus };
}

function gatewayDef(name: string, make: (dir: string, port: number, adminPort: number) => { file: string }, opts: { workers?: string; prof?: boolean } = {}): ServerDef {
  return {
    name,
    async start() {
      const port = await freePort();
      const adminPort = await freePort();
      const { file } = make(cfgDir, port, adminPort);
      const nodeArgs = ['--no-node-snapshot'];
      // No --cpu-prof-name: every thread of the process writes a profile (the sentinel is a
      // worker thread), and with one fixed name the last one written, the sentinel's, replaced
      // the main thread's. Each gateway gets its own folder; keepMainThreadProfile picks.
      if (opts.prof === true) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', join(outDir, 'profiles', name));
      const args = ['--config', file];
      // Pinned scenarios run the gateway as one process (--workers 0: no supervisor) when
      // the CLI has workers; multi-core runs pass their own count.
      const multi = opts.workers !== undefined;
      if (multi) args.push('--workers', opts.workers!);
      else if (workersSupported) args.push('--workers', '0');
      const proc = start({ name, cmd: NODE, args: [...nodeArgs, join(ROOT, 'core', 'cli.ts'), ...args], cpus: multi ? allCpus : gwCpus, cwd: ROOT, env: { ISOGATE_LOG_LEVEL: 'silent' } });
      await waitPort(port, proc);
      if (multi) await waitWorkers(adminPort, proc);
      return { name, port, proc, pid: proc.pid, children: multi, rssAtStart: rssBytes(proc.pid, multi), pinned: !multi && gwCpus !== null, adminPort: multi ? adminPort : undefined };
    },
  };
}

/** nginx with a master and `workers` workers on reuseport sockets, not pinned: the multi-core reference. */
function nginxMultiDef(name: string, workers: number): ServerDef {
  return {
    name,
    async start() {
      const { nginxConfig } = await import('./peers/nginx.ts');
      const port = await freePort();
      const { cmd, args } = nginxConfig(join(cfgDir, name), port, upstreamPort, workers);
      const proc = start({ name, cmd, args, cpus: allCpus });
      await waitPort(port, proc);
      return { name, port, proc, pid: proc.pid, children: true, rssAtStart: rssBytes(proc.pid, true), pinned: false };
    },
  };
}

/** Requests received by each serving worker (by slot), from the supervisor's /status. */
async function workerRequests(adminPort: number): Promise<number[] | null> {
  try {
    const j = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { workers?: { status?: { worker: number; counts?: { requests?: number } }[] } };
    const ws = j.workers?.status ?? [];
    const out: number[] = [];
    for (const w of ws) out[w.worker] = w.counts?.requests ?? 0;
    return ws.length > 0 && ws.every((w) => w.counts?.requests !== undefined) ? out : null;
  } catch {
    return null;
  }
}

/** Polls the supervisor's /status until every worker is ready. */
async function waitWorkers(adminPort: number, proc: Proc): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/status`);
      const j = (await r.json()) as { workers?: { size: number; ready: number } };
      if (j.workers !== undefined && j.workers.ready >= j.workers.size) return;
    } catch {
      // not up yet
    }
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited while its workers started`);
    await sleep(100);
  }
  throw new Error(`${proc.name}: workers not ready after 60 s`);
}

const tenantPaths = Array.from({ length: F.tenants }, (_, i) => `/t${i}/x`);

const NAIVE_IVM_CHAINS = [0, 1, 5, 10] as const;
const serverDefs: Record<string, ServerDef> = {
  upstream: {
    name: 'upstream',
    start: async () => ({ name: 'upstream', port: upstreamPort, proc: null, pid: upstreamProc.pid, children: false, rssAtStart: 0, pinned: loadCpus !== null }),
  },
  'node-proxy': { name: 'node-proxy', start: () => startNode('node-proxy', join(ROOT, 'bench', 'peers', 'node-proxy.ts'), ['--port', '{port}', '--upstream', UPSTREAM], gwCpus) },
  fastify: { name: 'fastify', start: () => startNode('fastify', join(ROOT, 'bench', 'peers', 'fastify-proxy.ts'), ['--port', '{port}', '--upstream', UPSTREAM], gwCpus) },
  'fastify-onsend': { name: 'fastify-onsend', start: () => startNode('fastify-onsend', join(ROOT, 'bench', 'peers', 'fastify-proxy.ts'), ['--port', '{port}', '--upstream', UPSTREAM, '--hook'], gwCpus) },
  nginx: {
    name: 'nginx',
    async start() {
      const { nginxConfig } = await import('./peers/nginx.ts');
      const port = await freePort();
      const { cmd, args } = nginxConfig(join(cfgDir, 'nginx'), port, upstreamPort);
      const proc = start({ name: 'nginx', cmd, args, cpus: gwCpus });
      await waitPort(port, proc);
      return { name: 'nginx', port, proc, pid: proc.pid, children: true, rssAtStart: rssBytes(proc.pid, true), pinned: gwCpus !== null };
    },
  },
  // OpenResty-style: nginx + lua-nginx-module, the header plugin in Lua, one location per chain length.
  openresty: {
    name: 'openresty',
    async start() {
      const port = await freePort();
      const c = openrestyConfig(join(cfgDir, 'openresty'), port, upstreamPort, nginxPath);
      if ('skip' in c) throw new Error(c.skip);
      const proc = start({ name: 'openresty', cmd: c.cmd, args: c.args, cpus: gwCpus });
      await waitPort(port, proc);
      return { name: 'openresty', port, proc, pid: proc.pid, children: true, rssAtStart: rssBytes(proc.pid, true), pinned: gwCpus !== null };
    },
    warm: async (s) => {
      for (const n of OPENRESTY_CHAINS) await probeHeaderPlugins(s.port, openrestyPath(n), n);
    },
  },
  ...Object.fromEntries(
    NAIVE_IVM_CHAINS.map((n): [string, ServerDef] => [`naive-ivm-${n}`, {
      name: `naive-ivm-${n}`,
      start: () => startNode(`naive-ivm-${n}`, join(ROOT, 'bench', 'peers', 'naive-ivm.ts'), ['--port', '{port}', '--upstream', UPSTREAM, '--plugins', String(n)], gwCpus, { nodeArgs: ['--no-node-snapshot'] }),
      warm: (s) => probeHeaderPlugins(s.port, '/', n),
    }]),
  ),
  'gw-proxy-0': gatewayDef('proxy-0', (d, p) => chainConfig(d, 'proxy-0', p, UPSTREAM, 0), { prof: F.cpuProf }),
  'gw-proxy-0-nolog': gatewayDef('proxy-0-nolog', (d, p) => chainConfig(d, 'proxy-0-nolog', p, UPSTREAM, 0, false)),
  'gw-plugins-1': gatewayDef('plugins-1', (d, p) => chainConfig(d, 'plugins-1', p, UPSTREAM, 1)),
  'gw-plugins-5': gatewayDef('plugins-5', (d, p) => chainConfig(d, 'plugins-5', p, UPSTREAM, 5), { prof: F.cpuProf }),
  'gw-plugins-10': gatewayDef('plugins-10', (d, p) => chainConfig(d, 'plugins-10', p, UPSTREAM, 10)),
  'gw-realistic-chain': gatewayDef('realistic-chain', (d, p) => realisticChainConfig(d, p, UPSTREAM)),
  'gw-body-filter': gatewayDef('body-filter', (d, p) => bodyFilterConfig(d, p, UPSTREAM)),
  'gw-tenants': {
    ...gatewayDef('tenants-1000', (d, p) => tenantsConfig(d, 'tenants', p, UPSTREAM, F.tenants, 't')),
    // Every tenant's isolate exists before the load starts (cold starts are their own scenario).
    warm: (s) => requestAll(s.port, tenantPaths, 16),
  },
  'gw-noisy': gatewayDef('noisy-neighbour', (d, p) => noisyConfig(d, p, UPSTREAM, F.noisyCpuMs)),
  'gw-noisy-10': gatewayDef('noisy-10', (d, p) => noisyManyConfig(d, p, UPSTREAM, F.noisyCpuMs, NOISY_MANY)),
  'gw-solo-2ms': gatewayDef('solo-2ms', (d, p) => solo2msConfig(d, p, UPSTREAM)),
  'gw-ratelimit-local': gatewayDef('ratelimit-local', (d, p) => rateLimitConfig(d, 'ratelimit-local', p, UPSTREAM, null)),
  'gw-ratelimit-redis': {
    name: 'ratelimit-redis',
    async start() {
      // The cluster's Redis runs on the load generator's cores: what it costs is not the gateway's.
      const redisPort = await freePort();
      const redis = start({ name: 'redis', cmd: 'redis-server', args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', cfgDir], cpus: loadCpus });
      await waitPort(redisPort, redis);
      return gatewayDef('ratelimit-redis', (d, p) => rateLimitConfig(d, 'ratelimit-redis', p, UPSTREAM, `redis://127.0.0.1:${redisPort}`)).start();
    },
  },
  'gw-w1': gatewayDef('multi-w1', (d, p, a) => multiConfig(d, 'multi-w1', p, a, UPSTREAM), { workers: '1' }),
  'gw-wN': gatewayDef('multi-wauto', (d, p, a) => multiConfig(d, 'multi-wauto', p, a, UPSTREAM), { workers: 'auto' }),
  'nginx-w1': nginxMultiDef('nginx-w1', 1),
  'nginx-wN': nginxMultiDef('nginx-wN', allowed.length),
};

// Ten noisy tenants at once, one noise connection each (at least --noisy-connections in all).
const NOISY_MANY = 10;

const servers = new Map<string, Server | Error>();
async function server(key: string): Promise<Server> {
  let s = servers.get(key);
  if (s === undefined) {
    const def = serverDefs[key];
    try {
      const started = await def.start();
      if (def.warm !== undefined) await def.warm(started);
      s = started;
    } catch (err) {
      s = err as Error;
    }
    servers.set(key, s);
  }
  if (s instanceof Error) throw s;
  return s;
}

async function requestAll(port: number, paths: readonly string[], concurrency: number): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency });
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < paths.length) {
        const path = paths[next++];
        const r = await pool.request({ path, method: 'GET', headers: { 'x-bench': '1' } });
        await r.body.dump();
      }
    }),
  );
  await pool.close();
}

// --- targets: one load configuration each, measured once per round ----------------------
/** noise: a second load generator on `noisePaths` (default /a) with `noiseConnections` (default --noisy-connections). */
/** headers: what the load generator sends instead of the default (`x-bench: 1`). */
type Target = TargetData & { serverKey: string; gen: 'main' | 'unpinned'; noise?: boolean; noisePaths?: string[]; noiseConnections?: number; headers?: Record<string, string> };
const targets: Target[] = [];
function target(t: Omit<Target, 'samples' | 'error'>): void {
  if (want(t.scenario)) targets.push({ ...t, samples: [], error: null });
}
const SMALL = ['/'];
const BIG = ['/64k'];
target({ id: 'direct', label: 'direct (upstream)', group: 'ceiling', scenario: 'direct', serverKey: 'upstream', paths: SMALL, gen: 'main', cpu: false, description: 'load generator straight at the upstream' });
target({ id: 'node-proxy', label: 'lean node proxy', group: 'peer', scenario: 'node-proxy', serverKey: 'node-proxy', paths: SMALL, gen: 'main', cpu: true, description: 'node:http + undici Pool (bench/peers/node-proxy.ts)' });
target({ id: 'fastify', label: 'fastify', group: 'peer', scenario: 'fastify', serverKey: 'fastify', paths: SMALL, gen: 'main', cpu: true, description: 'fastify + @fastify/http-proxy' });
target({ id: 'fastify-onsend', label: 'fastify + onSend', group: 'peer', scenario: 'fastify-onsend', serverKey: 'fastify-onsend', paths: SMALL, gen: 'main', cpu: true, description: 'fastify + @fastify/http-proxy + one onSend hook doing the header plugin\'s work unsandboxed' });
if (nginxPath !== null) {
  target({ id: 'nginx', label: 'nginx', group: 'peer', scenario: 'nginx', serverKey: 'nginx', paths: SMALL, gen: 'main', cpu: true, description: 'nginx proxy_pass, one worker, keep-alive upstream' });
}
// The per-plugin anchors: the same header plugin in OpenResty (Lua) and in a naive
// isolated-vm gateway, at the chain lengths of plugins-n (each its own 0-plugin baseline).
// Without the lua module the OpenResty peer is skipped (checked here with nginx -t on a
// placeholder port; start() rewrites the config), never failed.
const openrestySkip = want('openresty') ? (() => {
  const c = openrestyConfig(join(cfgDir, 'openresty'), 1, 1, nginxPath);
  return 'skip' in c ? c.skip : null;
})() : null;
if (openrestySkip !== null) progress.note(`openresty: skipped: ${openrestySkip}`);
for (const n of openrestySkip === null ? OPENRESTY_CHAINS : []) {
  target({ id: `openresty-${n}`, label: `openresty ${n} lua plugin${n === 1 ? '' : 's'}`, group: 'peer', scenario: 'openresty', serverKey: 'openresty', paths: [openrestyPath(n)], gen: 'main', cpu: true, description: `nginx + lua-nginx-module, one worker, ${n} Lua header plugin${n === 1 ? '' : 's'} (access_by_lua + header_filter_by_lua)` });
}
for (const n of NAIVE_IVM_CHAINS) {
  target({ id: `naive-ivm-${n}`, label: `naive isolated-vm ${n} plugin${n === 1 ? '' : 's'}`, group: 'peer', scenario: 'naive-ivm', serverKey: `naive-ivm-${n}`, paths: SMALL, gen: 'main', cpu: true, description: `node:http + undici, one isolate per plugin, one timed applySync per plugin per phase (${n} plugin${n === 1 ? '' : 's'})` });
}
target({ id: 'proxy-0', label: 'isogate proxy-0', group: 'isogate', scenario: 'proxy-0', serverKey: 'gw-proxy-0', paths: SMALL, gen: 'main', cpu: true, description: 'the gateway, one tenant, no plugins (access log on, to stdout: the default)' });
target({ id: 'proxy-0-nolog', label: 'isogate proxy-0-nolog', group: 'isogate', scenario: 'proxy-0-nolog', serverKey: 'gw-proxy-0-nolog', paths: SMALL, gen: 'main', cpu: true, description: 'proxy-0 with the access log off' });
for (const p of ['local', 'redis']) {
  target({ id: `ratelimit-${p}`, label: `isogate ratelimit-${p}`, group: 'isogate', scenario: `ratelimit-${p}`, serverKey: `gw-ratelimit-${p}`, paths: SMALL, gen: 'main', cpu: true, description: `one tenant, rate-limiting with policy ${p} (a limit never reached)` });
}
for (const n of [1, 5, 10]) {
  target({ id: `plugins-${n}`, label: `isogate plugins-${n}`, group: 'isogate', scenario: `plugins-${n}`, serverKey: `gw-plugins-${n}`, paths: SMALL, gen: 'main', cpu: true, description: `one tenant, a chain of ${n} header plugin${n > 1 ? 's' : ''}` });
}
target({
  id: 'realistic-chain', label: 'isogate realistic-chain', group: 'isogate', scenario: 'realistic-chain', serverKey: 'gw-realistic-chain', paths: SMALL, gen: 'main', cpu: true,
  headers: { 'x-bench': '1', apikey: REALISTIC_KEY, origin: 'https://app.example.com' },
  description: 'key-auth (a consumer key) + acl + cors + response-transformer, all bundled',
});
// 64 KB references for body-filter: same body through the lean proxy (and nginx).
target({ id: 'node-proxy-64k', label: 'lean node proxy 64k', group: 'peer', scenario: 'body-filter', serverKey: 'node-proxy', paths: BIG, gen: 'main', cpu: true, description: 'lean node proxy, 64 KB chunked body' });
if (nginxPath !== null) {
  target({ id: 'nginx-64k', label: 'nginx 64k', group: 'peer', scenario: 'body-filter', serverKey: 'nginx', paths: BIG, gen: 'main', cpu: true, description: 'nginx, 64 KB chunked body' });
}
target({ id: 'body-filter', label: 'isogate body-filter', group: 'isogate', scenario: 'body-filter', serverKey: 'gw-body-filter', paths: BIG, gen: 'main', cpu: true, description: 'one bodyFilter plugin rewriting a 64 KB chunked body' });
target({ id: 'tenants-1000', label: `isogate tenants-${F.tenants}`, group: 'isogate', scenario: 'tenants-1000', serverKey: 'gw-tenants', paths: tenantPaths, gen: 'main', cpu: true, description: `${F.tenants} tenants, requests spread over all (a path prefix each)` });
target({ id: 'noisy-solo', label: 'tenant B solo', group: 'noisy', scenario: 'noisy-neighbour', serverKey: 'gw-noisy', paths: ['/b'], gen: 'main', cpu: true, description: 'tenant B alone' });
target({ id: 'noisy-under', label: 'tenant B + noisy A', group: 'noisy', scenario: 'noisy-neighbour', serverKey: 'gw-noisy', paths: ['/b'], gen: 'main', cpu: true, noise: true, description: `tenant B while tenant A spins into its ${F.noisyCpuMs} ms CPU limit on every request (${F.noisyConnections} connections)` });
const noisyManyPaths = Array.from({ length: NOISY_MANY }, (_, i) => `/a${i}`);
const noisyManyConns = Math.max(NOISY_MANY, F.noisyConnections);
target({ id: 'noisy10-solo', label: 'tenant B solo (10-noisy gw)', group: 'noisy', scenario: 'noisy-10', serverKey: 'gw-noisy-10', paths: ['/b'], gen: 'main', cpu: true, description: 'tenant B alone, in the gateway of the 10 noisy tenants' });
target({ id: 'noisy10-under', label: 'tenant B + 10 noisy', group: 'noisy', scenario: 'noisy-10', serverKey: 'gw-noisy-10', paths: ['/b'], gen: 'main', cpu: true, noise: true, noisePaths: noisyManyPaths, noiseConnections: noisyManyConns, description: `tenant B while ${NOISY_MANY} tenants spin into their ${F.noisyCpuMs} ms CPU limit on every request (${noisyManyConns} connections over them)` });
target({ id: 'solo-2ms', label: 'one tenant, 2 ms plugin', group: 'noisy', scenario: 'solo-2ms', serverKey: 'gw-solo-2ms', paths: ['/s'], gen: 'main', cpu: true, description: 'one tenant alone whose plugin needs ~2 ms of CPU per request: any non-2xx is a throttled answer' });
if (workersSupported) {
  for (const profile of ['proxy-0', 'plugins-5']) {
    for (const w of ['w1', 'wN'] as const) {
      target({
        id: `${profile}-${w}`, label: `${profile} ${w === 'w1' ? '1 worker' : `${allowed.length} workers`}`, group: 'multi', scenario: 'multi-core',
        serverKey: `gw-${w}`, paths: [profile === 'proxy-0' ? '/p0/x' : '/p5/x'], gen: 'unpinned', cpu: true,
        description: `${profile}, --workers ${w === 'w1' ? '1' : 'auto'}, not pinned (the load generator shares the cores)`,
      });
    }
  }
  // The same conditions for nginx (a master and 1 or N workers, reuseport), in the same rounds:
  // what the machine allows two workers to gain, the figure Isogate's ratio is held against.
  if (nginxPath !== null) {
    for (const w of ['w1', 'wN'] as const) {
      target({
        id: `nginx-${w}`, label: `nginx ${w === 'w1' ? '1 worker' : `${allowed.length} workers`}`, group: 'multi', scenario: 'multi-core',
        serverKey: `nginx-${w}`, paths: SMALL, gen: 'unpinned', cpu: true,
        description: `nginx proxy_pass, master + ${w === 'w1' ? 1 : allowed.length} worker${w === 'w1' ? '' : 's'} with reuseport, not pinned`,
      });
    }
  }
}
const coldRounds: ColdRound[] = [];
let coldError: string | null = null;
const runCold = want('cold-start');

// --- measuring -----------------------------------------------------------------------
const headers = { 'x-bench': '1' };
/** A server's first measurement gets the full warm-up; later rounds a short re-warm (its JIT is warm, its connections are not). */
const warmedTargets = new Set<string>();
// (--quick skips the re-warm: its budget is two minutes.)
const REWARM_S = F.mode === 'quick' ? 0 : Math.min(F.warmupS / 2, 0.5);
function spec(t: Target, paths = t.paths, connections = F.connections): LoadSpec {
  return { port: 0, paths, connections, durationS: F.durationS, warmupS: warmedTargets.has(t.id) ? REWARM_S : F.warmupS, threads, headers: t.headers ?? headers };
}

async function measure(t: Target, round: number): Promise<void> {
  const s = await server(t.serverKey);
  if (s.proc !== null) resume(s.proc);
  try {
    await sleep(20);
    let cpu0 = 0;
    let cpu1 = 0;
    let w0 = 0;
    let w1 = 0;
    // Busy time of the gateway's core: what is not the server's own CPU is someone else's.
    const core = s.pinned && gwCpus !== null ? gwCpus[0] : -1;
    let busy0 = 0;
    let busy1 = 0;
    const hooks = {
      onStart: () => {
        w0 = performance.now();
        if (t.cpu) cpu0 = treeCpu(s.pid, s.children);
        if (core >= 0) busy0 = cpuBusySeconds(core);
        progress.measuring();
      },
      onEnd: () => {
        w1 = performance.now();
        if (t.cpu) cpu1 = treeCpu(s.pid, s.children);
        if (core >= 0) busy1 = cpuBusySeconds(core);
      },
    };
    let noise: Promise<LoadResult> | null = null;
    const sp = spec(t);
    if (t.noise === true) {
      noise = gen('noise').run({ ...sp, paths: t.noisePaths ?? ['/a'], connections: t.noiseConnections ?? F.noisyConnections, port: s.port });
      noise.catch(() => undefined);
    }
    const before = s.adminPort === undefined ? null : await workerRequests(s.adminPort);
    const r = await gen(t.gen).run({ ...sp, port: s.port }, hooks);
    const after = s.adminPort === undefined || before === null ? null : await workerRequests(s.adminPort);
    const a = noise === null ? null : await noise;
    warmedTargets.add(t.id);
    const cpuS = cpu1 - cpu0;
    const sample: Sample = {
      round,
      rps: r.rps,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      maxMs: r.maxMs,
      requests: r.requests,
      errors: r.errors,
      non2xx: r.non2xx,
      cpuS: t.cpu ? cpuS : null,
      cpuUsPerReq: t.cpu && r.requests > 0 ? (cpuS * 1e6) / r.requests : null,
      util: t.cpu && w1 > w0 ? cpuS / ((w1 - w0) / 1000) : null,
      otherCpu: t.cpu && core >= 0 && w1 > w0 ? Math.max(0, (busy1 - busy0 - cpuS) / ((w1 - w0) / 1000)) : null,
      rss: s.proc !== null ? rssBytes(s.pid, s.children) : null,
      rssAtStart: s.rssAtStart,
      noise: a === null ? null : { rps: a.rps, requests: a.requests, non2xx: a.non2xx, errors: a.errors, p99Ms: a.p99Ms },
      workerRequests: before !== null && after !== null && after.length === before.length ? after.map((n, i) => n - before[i]) : null,
    };
    t.samples.push(sample);
    progress.done(`${t.id} r${round + 1}: ${Math.round(r.rps).toLocaleString('en-US')} req/s, p99 ${r.p99Ms.toFixed(2)} ms${sample.cpuUsPerReq !== null ? `, ${sample.cpuUsPerReq.toFixed(1)} us CPU/req` : ''}${r.errors + r.non2xx > 0 ? `, ${r.errors + r.non2xx} errors` : ''}`);
  } finally {
    if (s.proc !== null) pause(s.proc);
  }
}

/**
 * Cold start: a fresh gateway; per tenant, the first request (isolate created) and then a
 * warm one. Then the same with every tenant pre-warmed (sandbox.prewarm, built before the
 * first request): what a first request still costs when its isolate already exists.
 */
async function measureCold(round: number): Promise<void> {
  const plain = await coldRound(round, false);
  const pre = await coldRound(round, true);
  coldRounds.push({ round, tenants: F.coldTenants, ...plain, prewarmedAddedP50Ms: pre.addedP50Ms, prewarmedAddedP99Ms: pre.addedP99Ms, rssPerIsolate: null });
  progress.done(`cold-start r${round + 1}: cold p50 ${plain.coldP50Ms.toFixed(2)} ms, p99 ${plain.coldP99Ms.toFixed(2)} ms; warm p50 ${plain.warmP50Ms.toFixed(2)} ms, p99 ${plain.warmP99Ms.toFixed(2)} ms; pre-warmed added p50 ${pre.addedP50Ms.toFixed(2)} ms, p99 ${pre.addedP99Ms.toFixed(2)} ms`);
}

async function coldRound(round: number, prewarm: boolean): Promise<{ coldP50Ms: number; coldP99Ms: number; warmP50Ms: number; warmP99Ms: number; addedP50Ms: number; addedP99Ms: number }> {
  const n = F.coldTenants + 1;
  let admin = 0;
  const def = gatewayDef(`cold-start${prewarm ? '-prewarmed' : ''}-r${round + 1}`, (d, p, a) => {
    admin = a;
    return tenantsConfig(d, prewarm ? 'cold-start-prewarmed' : 'cold-start', p, UPSTREAM, n, 'c', prewarm ? { prewarm: n, adminPort: a } : undefined);
  });
  const s = await def.start();
  try {
    if (prewarm) await waitIsolates(admin, n, s);
    const pool = new Pool(`http://127.0.0.1:${s.port}`, { connections: 1 });
    const get = async (path: string): Promise<number> => {
      const a = performance.now();
      const r = await pool.request({ path, method: 'GET', headers });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`cold-start: ${path} answered ${r.statusCode}`);
      return performance.now() - a;
    };
    progress.measuring();
    // Tenant c0 warms the gateway's own code paths (JIT), so cold means "isolate is new" only.
    for (let i = 0; i < 50; i++) await get('/c0/x');
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 1; i <= F.coldTenants; i++) {
      cold.push(await get(`/c${i}/x`));
      warm.push(await get(`/c${i}/x`));
    }
    await pool.close();
    const c = { p50: percentile(cold, 50), p99: percentile(cold, 99) };
    const w = { p50: percentile(warm, 50), p99: percentile(warm, 99) };
    return { coldP50Ms: c.p50, coldP99Ms: c.p99, warmP50Ms: w.p50, warmP99Ms: w.p99, addedP50Ms: c.p50 - w.p50, addedP99Ms: c.p99 - w.p99 };
  } finally {
    await stop(s.proc!);
  }
}

/** Waits until the gateway's /status counts `n` live isolates (its pre-warm pass is done). */
async function waitIsolates(adminPort: number, n: number, s: Server): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const r = await undiciRequest(`http://127.0.0.1:${adminPort}/status`);
      const body = (await r.body.json()) as { counts?: { isolates?: number } };
      if ((body.counts?.isolates ?? 0) >= n) return;
    } catch {
      // not up yet
    }
    if (s.proc?.child.exitCode != null) throw new Error(`${s.name} exited while pre-warming`);
    await sleep(50);
  }
  throw new Error(`${s.name}: ${n} isolates not pre-warmed after 60 s`);
}

// Plan: rounds interleave every target (A, B, C, ..., then again).
const loadAvgAtStart = loadAvg();
const est = (F.warmupS + (F.rounds - 1) * REWARM_S) / F.rounds + F.durationS + 0.3;
progress.plan(F.rounds * (targets.length + (runCold ? 1 : 0)), F.rounds * (targets.length * est + (runCold ? 1.5 + F.coldTenants * 0.006 : 0)));
progress.note(`isogate bench (${F.mode}): ${targets.length} load targets${runCold ? ' + cold-start' : ''} x ${F.rounds} rounds, ${tool}, ${F.connections} connections, ${F.warmupS}s warm-up + ${F.durationS}s; ` +
  (pinning ? `gateway pinned to CPU ${gwCpus!.join(',')}, load + upstream on ${loadCpus!.join(',')}` : 'not pinned (taskset missing or one core)') + `\n  report: ${outDir}`);

for (let round = 0; round < F.rounds && !aborting; round++) {
  for (const t of targets) {
    if (aborting) break;
    if (t.error !== null) continue;
    progress.begin(`${t.id}`, round, F.rounds);
    try {
      await measure(t, round);
    } catch (err) {
      if (aborting) break;
      t.error = (err as Error).message.split('\n')[0].slice(0, 300);
      progress.done(`${t.id}: failed: ${t.error}`);
    }
  }
  if (runCold && coldError === null && !aborting) {
    progress.begin('cold-start', round, F.rounds);
    try {
      await measureCold(round);
    } catch (err) {
      coldError = (err as Error).message.split('\n')[0].slice(0, 300);
      progress.done(`cold-start: failed: ${coldError}`);
    }
  }
}
progress.finish();
if (aborting) await new Promise(() => {}); // the signal handler exits

// Stop servers (profiles are written on a clean exit).
// A profiled gateway gets time to write its profiles (megabytes after a long run).
await Promise.all([...servers.values()].map((s) => (s instanceof Error || s.proc === null ? Promise.resolve() : stop(s.proc, F.cpuProf ? 30_000 : 3000))));
if (F.cpuProf) keepMainThreadProfiles(join(outDir, 'profiles'));
for (const g of gens.values()) await g.close();
await stop(upstreamProc);

// --- report --------------------------------------------------------------------------
const scenarioRows: ScenarioRow[] = [];
const byScenario = (name: string) => targets.filter((t) => t.scenario === name);
function row(name: string, description: string, skipped: string | null): void {
  if (skipped !== null) {
    scenarioRows.push({ name, status: 'skipped', reason: skipped, description });
    return;
  }
  const ts = byScenario(name);
  const failed = ts.find((t) => t.error !== null);
  if (failed !== undefined) scenarioRows.push({ name, status: 'failed', reason: `${failed.id}: ${failed.error}`, description });
  else scenarioRows.push({ name, status: 'ok', reason: null, description });
}
const notSelected = (s: string) => (want(s) ? null : 'not selected (--only)');
row('direct', 'load generator straight at the upstream (ceiling)', notSelected('direct'));
row('node-proxy', 'peer: node:http + undici, the floor of any Node gateway', notSelected('node-proxy'));
row('fastify', 'peer: fastify + @fastify/http-proxy', notSelected('fastify'));
row('fastify-onsend', "peer: fastify + @fastify/http-proxy + an onSend hook doing the header plugin's work", notSelected('fastify-onsend'));
row('nginx', 'peer: nginx proxy_pass', nginxPath === null ? 'nginx is not on the PATH' : notSelected('nginx'));
row('openresty', 'peer: nginx + lua-nginx-module, the header plugin in Lua at 0, 1, 5, 10 plugins', openrestySkip ?? notSelected('openresty'));
row('naive-ivm', 'peer: node:http + undici, one isolate and one timed call per plugin per phase, at 0, 1, 5, 10 plugins', notSelected('naive-ivm'));
row('proxy-0', 'the gateway with no plugins', notSelected('proxy-0'));
row('proxy-0-nolog', 'proxy-0 with the access log off (what the access log costs)', notSelected('proxy-0-nolog'));
for (const n of [1, 5, 10]) row(`plugins-${n}`, `a chain of ${n} header plugin${n > 1 ? 's' : ''} (access + headerFilter)`, notSelected(`plugins-${n}`));
row('ratelimit-local', 'rate-limiting, policy local: the node\'s counters, one crossing per request', notSelected('ratelimit-local'));
row('ratelimit-redis', 'rate-limiting, policy redis: a cluster node counting in Redis', notSelected('ratelimit-redis'));
row('body-filter', 'one plugin rewriting a 64 KB streamed response body', notSelected('body-filter'));
row('tenants-1000', `${F.tenants} tenants, each its own plugin instance and isolate`, notSelected('tenants-1000'));
if (!runCold) scenarioRows.push({ name: 'cold-start', status: 'skipped', reason: 'not selected (--only)', description: 'first request of a tenant whose isolate does not exist yet' });
else scenarioRows.push({ name: 'cold-start', status: coldError === null ? 'ok' : 'failed', reason: coldError, description: 'first request of a tenant whose isolate does not exist yet' });
row('noisy-neighbour', "tenant B alone, then while tenant A's plugin hits its CPU limit on every request", notSelected('noisy-neighbour'));
row('noisy-10', 'tenant B alone, then while 10 tenants hit their CPU limit on every request', notSelected('noisy-10'));
row('solo-2ms', 'one tenant with a 2 ms plugin on an otherwise idle gateway: never throttled', notSelected('solo-2ms'));
row('multi-core', 'proxy-0 and plugins-5 with 1 worker and one per core, and nginx with 1 and one per core (not pinned)', workersSupported ? notSelected('multi-core') : 'skipped: gateway has no --workers yet');

const data: RunData = {
  flags: F,
  startedAt: new Date(t0).toISOString(),
  elapsedS: (Date.now() - t0) / 1000,
  machine: machineInfo(allowed),
  loadGenerator: { tool, threads, connections: F.connections, cpus: loadCpus },
  pinning: {
    taskset: HAS_TASKSET,
    gatewayCpus: gwCpus,
    loadAndUpstreamCpus: loadCpus,
    note: pinning
      ? `Every server under test (Isogate and peers) runs pinned to CPU ${gwCpus!.join(',')}; the load generator, the upstream and the harness run on CPU ${loadCpus!.join(',')}. Servers not being measured are frozen (SIGSTOP). Multi-core runs are not pinned: the load generator shares the cores with the workers.`
      : 'Not pinned (taskset missing or a single core): the load generator competes with the server under test.',
  },
  workersSupported,
  loadAvg: { start: loadAvgAtStart, end: loadAvg() },
  targets,
  cold: coldRounds,
  scenarios: scenarioRows,
  outDir,
};
const { headline } = writeReport(data, { latest: F.latest });
process.stderr.write(`\n${headline}\n\nreport: ${join(outDir, 'report.md')}  (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
process.exit(0);

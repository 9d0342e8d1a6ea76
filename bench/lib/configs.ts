import { mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Gateway configs of the scenarios, written as real YAML files (kept in the run's
 * configs/ folder) with real plugin files next to them.
 */
const PLUGINS = join(import.meta.dirname, '..', 'plugins');

// The access log stays at the gateway's default (on, to stdout: what users get); only
// proxy-0-nolog turns it off, to measure what it costs.
const head = (port: number, access = true) => `# written by bench/lib/configs.ts
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: 0 }
log: { level: silent${access ? '' : ', access: false'} }
# The gateway's CPU share defaults: cpuWeight 100, no hard cap (cpuMaxMs), so a busy
# tenant alone may use the whole worker.
limits:
  defaults: { cpuMs: 50, memoryMb: 64 }
  ceilings: { cpuMs: 1000, memoryMb: 512 }
`;

/** Copies of the header plugin under distinct names: bench-header-1 .. -n. */
function headerPlugins(dir: string, n: number): string[] {
  const src = readFileSync(join(PLUGINS, 'header.ts'), 'utf8');
  const files: string[] = [];
  for (let i = 1; i <= n; i++) {
    const file = `header-${i}.ts`;
    writeFileSync(join(dir, file), src.replace("'bench-header'", `'bench-header-${i}'`).replace(/^import type .*\n/m, ''));
    files.push(file);
  }
  return files;
}

function copyPlugin(dir: string, name: string): string {
  writeFileSync(join(dir, name), readFileSync(join(PLUGINS, name), 'utf8').replace(/^import type .*\n/m, ''));
  return name;
}

export type GatewayConfig = { file: string; description: string };

/** One tenant whose one plugin (micro-ops.ts) makes `reads` getHeader, `writes` setHeader and `waits` awaited cache.get calls in access (bench:micro). */
export function microOpsConfig(dir: string, reads: number, writes: number, waits: number): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const p = copyPlugin(dir, 'micro-ops.ts');
  const file = join(dir, `micro-ops-${reads}-${writes}-${waits}.yaml`);
  writeFileSync(file, head(0) + `tenants:
  - name: bench
    services: [{ name: up, url: "http://127.0.0.1:9" }]
    routes: [{ name: all, service: up, paths: [/] }]
    plugins:
      - { name: micro-ops, path: ./${p}, config: { reads: ${reads}, writes: ${writes}, waits: ${waits} } }
`);
  return { file, description: `one plugin: ${reads} reads, ${writes} writes, ${waits} async calls in access` };
}

/** One tenant, `plugins` header plugins (0: none) on route "/"; `access: false` turns the access log off. */
export function chainConfig(dir: string, name: string, port: number, upstream: string, plugins: number, access = true): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const files = headerPlugins(dir, plugins);
  let y = head(port, access) + `tenants:
  - name: bench
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: all, service: up, paths: [/] }]
`;
  if (plugins > 0) {
    y += '    plugins:\n';
    files.forEach((f, i) => (y += `      - { name: bench-header-${i + 1}, path: ./${f}, config: { n: ${i + 1} } }\n`));
  }
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, y);
  const what = plugins === 0 ? 'one tenant, no plugins' : `one tenant, ${plugins} header plugin${plugins > 1 ? 's' : ''} (access + headerFilter)`;
  return { file, description: access ? what : `${what}, access log off` };
}

export function bodyFilterConfig(dir: string, port: number, upstream: string): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const p = copyPlugin(dir, 'body-rewrite.ts');
  const file = join(dir, 'body-filter.yaml');
  writeFileSync(file, head(port) + `tenants:
  - name: bench
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: all, service: up, paths: [/] }]
    plugins:
      - { name: bench-body-rewrite, path: ./${p} }
`);
  return { file, description: 'one tenant, one bodyFilter plugin rewriting a 64 KB chunked body' };
}

/** `n` tenants, each with route /<prefix><i> and its own header plugin instance. */
/** `prewarm`: tenants whose isolates the gateway builds at config load (sandbox.prewarm), with the admin API on `adminPort` to see when. */
export function tenantsConfig(dir: string, name: string, port: number, upstream: string, n: number, prefix: string, pre?: { prewarm: number; adminPort: number }): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const [f] = headerPlugins(dir, 1);
  // maxTotalHeapMb: the default (8192) divided by memoryMb (64) allows only 128 live
  // isolates; beyond that tenants evict each other and every request is a cold start.
  const top = pre === undefined ? head(port) : head(port).replace('admin: { host: 127.0.0.1, port: 0 }', `admin: { host: 127.0.0.1, port: ${pre.adminPort} }`);
  const lines: string[] = [top + `sandbox: { maxIsolates: ${Math.max(10000, n * 2)}, idleTimeoutMs: 0, maxTotalHeapMb: ${Math.max(8192, n * 64 + 64)}, prewarm: ${pre?.prewarm ?? 0} }\ntenants:`];
  for (let i = 0; i < n; i++) {
    lines.push(`  - name: ${prefix}${i}
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/${prefix}${i}] }]
    plugins: [{ name: bench-header-1, path: ./${f}, config: { n: 1 } }]`);
  }
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, lines.join('\n') + '\n');
  return { file, description: `${n} tenants, a path prefix and a header plugin instance (own isolate) each` };
}

/** Tenant "a" (route /a) spins into its CPU limit; tenant "b" (route /b) runs one header plugin. */
export function noisyConfig(dir: string, port: number, upstream: string, cpuMs: number): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const spin = copyPlugin(dir, 'spin.ts');
  const [f] = headerPlugins(dir, 1);
  const file = join(dir, 'noisy.yaml');
  writeFileSync(file, head(port) + `tenants:
  - name: a
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/a] }]
    plugins: [{ name: bench-spin, path: ./${spin}, limits: { cpuMs: ${cpuMs} } }]
  - name: b
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/b] }]
    plugins: [{ name: bench-header-1, path: ./${f}, config: { n: 1 } }]
`);
  return { file, description: `tenant a: while(true){} with cpuMs ${cpuMs}; tenant b: one header plugin; both with the gateway's default CPU share (cpuWeight 100, no cap)` };
}

/** Noisy neighbours: tenants a0..a{n-1} each spin into cpuMs on every request; tenant b runs one header plugin. */
export function noisyManyConfig(dir: string, port: number, upstream: string, cpuMs: number, n: number): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const spin = copyPlugin(dir, 'spin.ts');
  const [f] = headerPlugins(dir, 1);
  const file = join(dir, `noisy-${n}.yaml`);
  let y = head(port) + 'tenants:\n';
  for (let i = 0; i < n; i++) {
    y += `  - name: a${i}
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/a${i}] }]
    plugins: [{ name: bench-spin, path: ./${spin}, limits: { cpuMs: ${cpuMs} } }]
`;
  }
  y += `  - name: b
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/b] }]
    plugins: [{ name: bench-header-1, path: ./${f}, config: { n: 1 } }]
`;
  writeFileSync(file, y);
  return { file, description: `${n} tenants a0..a${n - 1}: while(true){} with cpuMs ${cpuMs}; tenant b: one header plugin; all with the default CPU share` };
}

/** One tenant whose plugin needs about 2 ms of CPU per request, with the gateway's default CPU share. */
export function solo2msConfig(dir: string, port: number, upstream: string): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const p = copyPlugin(dir, 'two-ms.ts');
  const file = join(dir, 'solo-2ms.yaml');
  writeFileSync(file, head(port) + `tenants:
  - name: s
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/s] }]
    plugins: [{ name: bench-two-ms, path: ./${p}, limits: { cpuMs: 1000 } }]
`);
  return { file, description: "one tenant, a plugin needing ~2 ms of CPU per request, the gateway's default CPU share (the old 200 ms/s budget allowed ~100 req/s)" };
}

/** Multi-core: tenant p0 (route /p0, no plugins) and tenant p5 (route /p5, 5 header plugins) in one gateway. */
export function multiConfig(dir: string, name: string, port: number, adminPort: number, upstream: string): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const files = headerPlugins(dir, 5);
  // The harness freezes idle servers (SIGSTOP); after SIGCONT the supervisor would find its
  // last pong seconds old and replace every worker as wedged, so the timeout is relaxed.
  let y = head(port).replace('admin: { host: 127.0.0.1, port: 0 }', `admin: { host: 127.0.0.1, port: ${adminPort} }`) + `supervisor: { healthTimeoutMs: 3600000 }
tenants:
  - name: p0
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/p0] }]
  - name: p5
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: r, service: up, paths: [/p5] }]
    plugins:
`;
  files.forEach((f, i) => (y += `      - { name: bench-header-${i + 1}, path: ./${f}, config: { n: ${i + 1} } }\n`));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, y);
  return { file, description: 'tenant p0: no plugins (/p0); tenant p5: 5 header plugins (/p5)' };
}

/**
 * One tenant, the bundled rate-limiting plugin with a limit never reached (every request
 * counted, none refused). `redis`: the gateway is a cluster node on that Redis and the
 * plugin's policy is redis (the cluster's counters); otherwise a single node, policy local.
 */
export function rateLimitConfig(dir: string, name: string, port: number, upstream: string, redis: string | null): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  // A cluster node seeds an empty Redis from the cluster file of its last run when there is
  // one (README, Cluster): a run of the same day reuses this folder, and that file names the
  // upstream port of that run (every answer was a 502 until this was removed).
  rmSync(join(dir, `${name}.cluster.yaml`), { force: true });
  const cluster = redis === null ? '' : `cluster: { redis: { url: "${redis}", keyPrefix: "bench-${name}:" } }\n`;
  writeFileSync(file, head(port) + cluster + `tenants:
  - name: bench
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: all, service: up, paths: [/] }]
    plugins:
      - { name: rate-limiting, config: { second: 1000000000, hour: 1000000000, limit_by: ip, policy: ${redis === null ? 'local' : 'redis'} } }
`);
  return { file, description: `one tenant, rate-limiting (second and hour windows, a limit never reached), policy ${redis === null ? 'local (the node\'s counters)' : 'redis (a cluster node; the counters in a local redis-server)'}` };
}

/** The key the load generator sends (header `apikey`) in the realistic-chain scenario. */
export const REALISTIC_KEY = 'bench-key-0123456789';

/**
 * A route as a real API has it: key-auth (a consumer with a key), acl (the consumer's
 * group allowed), rate-limiting (local, a limit never reached), cors (the load sends an Origin) and response-transformer (header edits:
 * its response phase buffers each upstream response), all bundled plugins, one tenant.
 */
export function realisticChainConfig(dir: string, port: number, upstream: string): GatewayConfig {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'realistic-chain.yaml');
  writeFileSync(file, head(port) + `tenants:
  - name: bench
    services: [{ name: up, url: "${upstream}" }]
    routes: [{ name: all, service: up, paths: [/] }]
    consumers:
      - id: c-bench
        username: bench
        credentials: { key-auth: [{ key: ${REALISTIC_KEY} }], acl: [{ group: bench-users }] }
    plugins:
      - { name: key-auth, config: { hide_credentials: true } }
      - { name: acl, config: { allow: [bench-users] } }
      - { name: cors, config: { origins: ["https://app.example.com"], credentials: true, exposed_headers: [X-Served-By] } }
      - { name: response-transformer, config: { remove: { headers: [X-Powered-By] }, add: { headers: ["X-Served-By:isogate"] } } }
      - { name: rate-limiting, config: { second: 1000000000, hour: 1000000000, limit_by: consumer, policy: local } }
`);
  return { file, description: 'one tenant, bundled key-auth + acl + rate-limiting (local) + cors + response-transformer (a consumer key sent by the load)' };
}

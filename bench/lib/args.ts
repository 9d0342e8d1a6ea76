import { parseArgs } from 'node:util';

export type Mode = 'full' | 'quick' | 'smoke';

export type Flags = {
  mode: Mode;
  durationS: number;
  warmupS: number;
  rounds: number;
  connections: number;
  threads: number;
  tenants: number;
  coldTenants: number;
  noisyCpuMs: number;
  noisyConnections: number;
  loadgen: 'auto' | 'autocannon' | 'wrk';
  only: string[] | null;
  out: string | null;
  latest: boolean;
  cpuProf: boolean;
};

export const USAGE = `npm run bench -- [flags]        (node --no-node-snapshot bench/run.ts [flags])

  --quick               short run (under 2 min on 2 cores): 3 rounds of 1 s after 0.5 s warm-up
  --smoke               CI smoke (~30-60 s): 1 round of 1 s per scenario, fewer tenants; numbers mean nothing
  --duration S          measured seconds per scenario per round      (full 5, quick 1, smoke 1)
  --warmup S            warm-up seconds before a server's first measurement (full 2, quick 0.5,
                        smoke 0.2); later rounds re-warm for min(S/2, 0.5) s (not in --quick)
  --rounds N            interleaved rounds, median/min/max over them (full 3, quick 3, smoke 1)
  --connections N       concurrent connections of the load generator (32; smoke 16)
  --threads N           load generator threads (default: 1 per 2 load cores, at least 1)
  --loadgen NAME        auto | autocannon | wrk   (auto: wrk when on the PATH, else autocannon)
  --tenants N           tenants of the tenants-1000 scenario          (1000; smoke 50)
  --cold-tenants N      cold starts measured per round                (full 200, quick 30, smoke 10)
  --noisy-cpu-ms N      CPU limit of the noisy tenant's spinning plugin (20)
  --noisy-connections N connections of the noisy tenant's load generator (4)
  --only a,b            only these scenarios (direct, node-proxy, fastify, fastify-onsend, nginx,
                        openresty, naive-ivm, proxy-0, proxy-0-nolog, plugins-1, plugins-5,
                        plugins-10, realistic-chain, ratelimit-local, ratelimit-redis,
                        body-filter, tenants-1000, cold-start, noisy-neighbour, noisy-10,
                        solo-2ms, multi-core)
  --out DIR             report folder (default bench/results/<date>-<host id>/)
  --no-latest           do not copy the report to bench/results/latest/ nor update bench/README.md
  --cpu-prof            write V8 CPU profiles of the proxy-0 and plugins-5 gateways (slows them down)
  --help                this text
`;

export function parseFlags(argv: string[]): Flags | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      loadgen: { type: 'string', default: 'auto' },
      tenants: { type: 'string' },
      'cold-tenants': { type: 'string' },
      'noisy-cpu-ms': { type: 'string' },
      'noisy-connections': { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      'no-latest': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return null;
  const mode: Mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const preset = {
    full: { durationS: 5, warmupS: 2, rounds: 3, connections: 32, tenants: 1000, coldTenants: 200 },
    quick: { durationS: 1, warmupS: 0.5, rounds: 3, connections: 32, tenants: 1000, coldTenants: 30 },
    smoke: { durationS: 1, warmupS: 0.2, rounds: 1, connections: 16, tenants: 50, coldTenants: 10 },
  }[mode];
  const num = (v: string | undefined, d: number, name: string, min = 0): number => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got "${v}"`);
    return n;
  };
  const loadgen = values.loadgen;
  if (loadgen !== 'auto' && loadgen !== 'autocannon' && loadgen !== 'wrk') throw new Error(`--loadgen: auto, autocannon or wrk, not "${loadgen}"`);
  return {
    mode,
    durationS: num(values.duration, preset.durationS, 'duration', 0.2),
    warmupS: num(values.warmup, preset.warmupS, 'warmup', 0),
    rounds: Math.round(num(values.rounds, preset.rounds, 'rounds', 1)),
    connections: Math.round(num(values.connections, preset.connections, 'connections', 1)),
    threads: Math.round(num(values.threads, 0, 'threads', 0)),
    tenants: Math.round(num(values.tenants, preset.tenants, 'tenants', 1)),
    coldTenants: Math.round(num(values['cold-tenants'], preset.coldTenants, 'cold-tenants', 2)),
    noisyCpuMs: num(values['noisy-cpu-ms'], 20, 'noisy-cpu-ms', 1),
    noisyConnections: Math.round(num(values['noisy-connections'], 4, 'noisy-connections', 1)),
    loadgen,
    only: values.only === undefined ? null : values.only.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    out: values.out ?? null,
    latest: !values['no-latest'] && !values.smoke && values.out === undefined,
    cpuProf: values['cpu-prof'],
  };
}

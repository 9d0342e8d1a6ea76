import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Flags } from './args.ts';
import { hotspots } from './cpuprofile.ts';
import { ROOT, type Machine } from './machine.ts';
import { fmt, fmtS, summarize, type Summary } from './stats.ts';
import { barChart, type Bar } from './svg.ts';

/** One measurement of one target in one round. */
export type Sample = {
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** Gateway CPU seconds (utime+stime, with children when multi-process) over the measured part. */
  cpuS: number | null;
  cpuUsPerReq: number | null;
  /** CPU seconds per wall second: 1.0 = one core fully busy. */
  util: number | null;
  /** CPU per wall second used on the gateway's pinned core by anything but the server (other processes, softirqs). */
  otherCpu: number | null;
  rss: number | null;
  rssAtStart: number;
  /** Multi-core gateways: requests each worker received over the measurement (warm-up included), by worker slot. */
  workerRequests?: number[] | null;
  /** noisy-under: what the noisy tenant's load generator saw. */
  noise: { rps: number; requests: number; non2xx: number; errors: number; p99Ms: number } | null;
};

export type TargetData = {
  id: string;
  label: string;
  group: 'ceiling' | 'peer' | 'isogate' | 'multi' | 'noisy';
  scenario: string;
  paths: string[];
  cpu: boolean;
  description: string;
  samples: Sample[];
  error: string | null;
};

export type ColdRound = {
  round: number;
  tenants: number;
  coldP50Ms: number;
  coldP99Ms: number;
  warmP50Ms: number;
  warmP99Ms: number;
  addedP50Ms: number;
  addedP99Ms: number;
  /** The same, every tenant's isolate pre-warmed (sandbox.prewarm) before its first request. */
  prewarmedAddedP50Ms?: number;
  prewarmedAddedP99Ms?: number;
  rssPerIsolate: number | null;
};

export type ScenarioRow = { name: string; status: 'ok' | 'skipped' | 'failed'; reason: string | null; description: string };

export type RunData = {
  flags: Flags;
  startedAt: string;
  elapsedS: number;
  machine: Machine;
  loadGenerator: { tool: string; threads: number; connections: number; cpus: readonly number[] | null };
  pinning: { taskset: boolean; gatewayCpus: readonly number[] | null; loadAndUpstreamCpus: readonly number[] | null; note: string };
  workersSupported: boolean;
  loadAvg: { start: number; end: number };
  targets: TargetData[];
  cold: ColdRound[];
  scenarios: ScenarioRow[];
  outDir: string;
};

type TargetSummary = {
  rps: Summary | null;
  p50Ms: Summary | null;
  p99Ms: Summary | null;
  cpuUsPerReq: Summary | null;
  util: Summary | null;
  otherCpu: Summary | null;
  errors: number;
  requests: number;
};

type Check = { name: string; target: string; measured: string; value: number | null; met: boolean | null; note: string };

const MB = 1024 * 1024;

export function writeReport(d: RunData, opts: { latest: boolean }): { headline: string } {
  const byId = new Map(d.targets.map((t) => [t.id, t]));
  const sum = (id: string): TargetSummary | null => {
    const t = byId.get(id);
    if (t === undefined || t.samples.length === 0) return null;
    const s = t.samples;
    return {
      rps: summarize(s.map((x) => x.rps)),
      p50Ms: summarize(s.map((x) => x.p50Ms)),
      p99Ms: summarize(s.map((x) => x.p99Ms)),
      cpuUsPerReq: summarize(s.map((x) => x.cpuUsPerReq)),
      util: summarize(s.map((x) => x.util)),
      otherCpu: summarize(s.map((x) => x.otherCpu)),
      errors: s.reduce((a, x) => a + x.errors + x.non2xx, 0),
      requests: s.reduce((a, x) => a + x.requests, 0),
    };
  };
  /** Per-round ratio a/b of a metric, paired by round (both measured in the same round). */
  const ratio = (a: string, b: string, m: (s: Sample) => number | null = (s) => s.rps): Summary | null => {
    const ta = byId.get(a);
    const tb = byId.get(b);
    if (ta === undefined || tb === undefined) return null;
    const vals: number[] = [];
    for (const sa of ta.samples) {
      const sb = tb.samples.find((x) => x.round === sa.round);
      const va = m(sa);
      const vb = sb === undefined ? null : m(sb);
      if (va !== null && vb !== null && vb !== 0) vals.push(va / vb);
    }
    return summarize(vals);
  };
  const perRound = (ids: string[], f: (...s: Sample[]) => number | null): Summary | null => {
    const ts = ids.map((id) => byId.get(id));
    if (ts.some((t) => t === undefined)) return null;
    const vals: (number | null)[] = [];
    for (const s0 of ts[0]!.samples) {
      const row = ts.map((t) => t!.samples.find((x) => x.round === s0.round));
      if (row.some((x) => x === undefined)) continue;
      vals.push(f(...(row as Sample[])));
    }
    return summarize(vals);
  };

  // What the access log costs: proxy-0 (on, the default) minus proxy-0-nolog, per round.
  const accessLogCpu = perRound(['proxy-0', 'proxy-0-nolog'], (a, b) => (a.cpuUsPerReq === null || b.cpuUsPerReq === null ? null : a.cpuUsPerReq - b.cpuUsPerReq));
  const perPlugin: Record<string, Summary | null> = {};
  for (const n of [1, 5, 10]) {
    perPlugin[n] = perRound([`plugins-${n}`, 'proxy-0'], (a, b) => (a.cpuUsPerReq === null || b.cpuUsPerReq === null ? null : (a.cpuUsPerReq - b.cpuUsPerReq) / n));
  }
  // The same header plugin in three designs, each against its own 0-plugin baseline, per
  // round: the first plugin (1 − 0), the average at n ((n − 0) / n) and each further one
  // ((n − 1) / (n − 1)). Isogate's figure to beat is OpenResty's; the naive isolated-vm
  // design (one isolate and one timed call per plugin per phase) is what the bridge must beat.
  const cpuDiff = (div: number) => (a: Sample, b: Sample) => (a.cpuUsPerReq === null || b.cpuUsPerReq === null ? null : (a.cpuUsPerReq - b.cpuUsPerReq) / div);
  const DESIGNS = [
    { key: 'isogate', label: 'Isogate', id: (n: number) => (n === 0 ? 'proxy-0' : `plugins-${n}`) },
    { key: 'openresty', label: 'OpenResty (Lua)', id: (n: number) => `openresty-${n}` },
    { key: 'naiveIvm', label: 'naive isolated-vm', id: (n: number) => `naive-ivm-${n}` },
  ] as const;
  const designCost = Object.fromEntries(
    DESIGNS.map((g) => [g.key, {
      baseCpuUs: sum(g.id(0))?.cpuUsPerReq ?? null,
      first: perRound([g.id(1), g.id(0)], cpuDiff(1)),
      average5: perRound([g.id(5), g.id(0)], cpuDiff(5)),
      further5: perRound([g.id(5), g.id(1)], cpuDiff(4)),
      average10: perRound([g.id(10), g.id(0)], cpuDiff(10)),
      further10: perRound([g.id(10), g.id(1)], cpuDiff(9)),
      rps10vs0: ratio(g.id(10), g.id(0)),
    }]),
  );
  const hookOverhead = perRound(['fastify-onsend', 'fastify'], (a, b) => (a.cpuUsPerReq === null || b.cpuUsPerReq === null ? null : a.cpuUsPerReq - b.cpuUsPerReq));
  const tenantsT = byId.get('tenants-1000');
  const tenantsN = tenantsT?.paths.length ?? 0;
  const rssPerTenant = summarize(tenantsT?.samples.map((s) => (s.rss === null ? null : (s.rss - s.rssAtStart) / tenantsN / MB)) ?? []);
  const coldSum = {
    coldP50Ms: summarize(d.cold.map((c) => c.coldP50Ms)),
    coldP99Ms: summarize(d.cold.map((c) => c.coldP99Ms)),
    warmP50Ms: summarize(d.cold.map((c) => c.warmP50Ms)),
    warmP99Ms: summarize(d.cold.map((c) => c.warmP99Ms)),
    addedP50Ms: summarize(d.cold.map((c) => c.addedP50Ms)),
    addedP99Ms: summarize(d.cold.map((c) => c.addedP99Ms)),
    prewarmedAddedP50Ms: summarize(d.cold.map((c) => c.prewarmedAddedP50Ms ?? null)),
    prewarmedAddedP99Ms: summarize(d.cold.map((c) => c.prewarmedAddedP99Ms ?? null)),
  };
  const noisyOf = (under: string, solo: string) => {
    const u = byId.get(under);
    return {
      rpsRatio: ratio(under, solo),
      p99Ratio: ratio(under, solo, (s) => s.p99Ms),
      errorsUnderNoise: u === undefined || u.samples.length === 0 ? null : u.samples.reduce((a, s) => a + s.errors + s.non2xx, 0),
      noisyTenant: {
        rps: summarize(u?.samples.map((s) => s.noise?.rps) ?? []),
        failed: u?.samples.reduce((a, s) => a + (s.noise?.non2xx ?? 0) + (s.noise?.errors ?? 0), 0) ?? null,
      },
    };
  };
  const noisy = noisyOf('noisy-under', 'noisy-solo');
  const noisy10 = noisyOf('noisy10-under', 'noisy10-solo');
  const soloT = byId.get('solo-2ms');
  const solo2ms = {
    rps: summarize(soloT?.samples.map((s) => s.rps) ?? []),
    throttled: soloT === undefined || soloT.samples.length === 0 ? null : soloT.samples.reduce((a, s) => a + s.non2xx + s.errors, 0),
  };
  const multi = {
    'proxy-0': ratio('proxy-0-wN', 'proxy-0-w1'),
    'plugins-5': ratio('plugins-5-wN', 'plugins-5-w1'),
    nginx: ratio('nginx-wN', 'nginx-w1'),
  };
  // Isogate's all-workers-vs-1 over nginx's, per round (all four measured in the same round).
  const againstNginx = (p: string) => perRound([`${p}-wN`, `${p}-w1`, 'nginx-wN', 'nginx-w1'], (a, b, c, e) => (b.rps > 0 && c.rps > 0 && e.rps > 0 ? a.rps / b.rps / (c.rps / e.rps) : null));
  const multiVsNginx = { 'proxy-0': againstNginx('proxy-0'), 'plugins-5': againstNginx('plugins-5') };
  /** The smallest worker's share of the requests, per round: 0.5 with two workers is an even spread. */
  const leastShare = (id: string) => summarize(byId.get(id)?.samples.map((s) => (s.workerRequests == null || s.workerRequests.length === 0 ? null : Math.min(...s.workerRequests) / s.workerRequests.reduce((x, y) => x + y, 0))) ?? []);
  const vsNode = (id: string) => ratio(id, id === 'body-filter' ? 'node-proxy-64k' : 'node-proxy');
  const vsNginx = (id: string) => ratio(id, id === 'body-filter' ? 'nginx-64k' : 'nginx');
  const cpuVsNode = (id: string) => ratio(id, id === 'body-filter' ? 'node-proxy-64k' : 'node-proxy', (s) => s.cpuUsPerReq);

  const ratios: Record<string, Summary | null> = {
    'proxy-0/node-proxy': ratio('proxy-0', 'node-proxy'),
    'proxy-0/fastify': ratio('proxy-0', 'fastify'),
    'proxy-0/nginx': ratio('proxy-0', 'nginx'),
    'proxy-0-nolog/proxy-0': ratio('proxy-0-nolog', 'proxy-0'),
    'plugins-1/proxy-0': ratio('plugins-1', 'proxy-0'),
    'plugins-5/proxy-0': ratio('plugins-5', 'proxy-0'),
    'plugins-10/proxy-0': ratio('plugins-10', 'proxy-0'),
    'realistic-chain/proxy-0': ratio('realistic-chain', 'proxy-0'),
    'body-filter/node-proxy-64k': ratio('body-filter', 'node-proxy-64k'),
    'tenants-1000/plugins-1': ratio('tenants-1000', 'plugins-1'),
    'tenants-1000/plugins-1 p99': ratio('tenants-1000', 'plugins-1', (s) => s.p99Ms),
    'fastify-onsend/fastify': ratio('fastify-onsend', 'fastify'),
    'plugins-1/fastify-onsend': ratio('plugins-1', 'fastify-onsend'),
  };
  for (const t of d.targets) {
    if (t.group === 'isogate') {
      ratios[`${t.id}/node-proxy (req/s)`] = vsNode(t.id);
      ratios[`${t.id}/nginx (req/s)`] = vsNginx(t.id);
      ratios[`${t.id}/node-proxy (CPU per request)`] = cpuVsNode(t.id);
    }
  }

  // --- targets (measured, never asserted) ---
  const checks: Check[] = [];
  const check = (name: string, target: string, s: Summary | null, ok: (v: number) => boolean, unit: string, digits: number, note = '') => {
    checks.push({
      name,
      target,
      measured: s === null ? 'not measured' : fmtS(s, digits, unit),
      value: s?.median ?? null,
      met: s === null ? null : ok(s.median),
      note: s !== null && ok(s.min) !== ok(s.max) ? `range straddles the target${note === '' ? '' : '; ' + note}` : note,
    });
  };
  check('proxy-0 vs lean Node proxy (req/s)', '>= 1.0x', ratios['proxy-0/node-proxy'], (v) => v >= 1.0, 'x', 2);
  check('proxy-0 vs fastify (req/s)', '>= 1.3x', ratios['proxy-0/fastify'], (v) => v >= 1.3, 'x', 2);
  // issue 11's targets: the first plugin <= 10 us, then <= 4 us per plugin at 5 and <= 3 at 10
  for (const [n, max] of [[1, 10], [5, 4], [10, 3]] as const) check(`CPU per header plugin, at ${n} plugin${n > 1 ? 's' : ''}`, `<= ${max} us`, perPlugin[n], (v) => v <= max, ' us', 2);
  check('plugins-10 vs proxy-0 (req/s)', '>= 0.7x', ratios['plugins-10/proxy-0'], (v) => v >= 0.7, 'x', 2);
  check(`tenants-1000: RSS per tenant (${tenantsN} tenants)`, '<= 1.0 MB', rssPerTenant, (v) => v <= 1.0, ' MB', 2);
  check('tenants-1000 vs 1 tenant (plugins-1, req/s)', '>= 0.8x', ratios['tenants-1000/plugins-1'], (v) => v >= 0.8, 'x', 2);
  check('cold-start: added p99 latency', '<= 3 ms', coldSum.addedP99Ms, (v) => v <= 3, ' ms', 2);
  check('body-filter 64 KB: CPU per request vs the lean Node proxy on the same body', '<= 2.0x', cpuVsNode('body-filter'), (v) => v <= 2.0, 'x', 2);
  check('cold-start pre-warmed: added p99 latency', '<= 1 ms', coldSum.prewarmedAddedP99Ms, (v) => v <= 1, ' ms', 2);
  for (const p of ['proxy-0', 'plugins-5'] as const) {
    check(`multi-core ${p}: all workers vs 1, over nginx's all vs 1`, '>= 0.9x', multiVsNginx[p], (v) => v >= 0.9, 'x', 2, d.workersSupported ? `isogate ${fmtS(multi[p], 2, 'x')}, nginx ${fmtS(multi.nginx, 2, 'x')}` : 'gateway has no --workers yet');
  }
  const zero = (name: string, v: number | null) => checks.push({ name, target: '0', measured: v === null ? 'not measured' : String(v), value: v, met: v === null ? null : v === 0, note: '' });
  for (const [label, n] of [['noisy neighbour', noisy], ['10 noisy neighbours', noisy10]] as const) {
    check(`${label}: B req/s under noise vs solo`, '>= 0.9x', n.rpsRatio, (v) => v >= 0.9, 'x', 2);
    check(`${label}: B p99 under noise vs solo`, '<= 1.2x', n.p99Ratio, (v) => v <= 1.2, 'x', 2);
    zero(`${label}: B errors under noise`, n.errorsUnderNoise);
  }
  zero('one tenant, 2 ms plugin, idle gateway: throttled (non-2xx) answers', solo2ms.throttled);

  // --- markdown ---
  const m = d.machine;
  const L: string[] = [];
  const metCell = (c: Check) => (c.met === null ? 'n/a' : c.met ? '**met**' : 'not met');
  const headlineIds = ['proxy-0', 'proxy-0-nolog', 'plugins-1', 'plugins-5', 'plugins-10', 'realistic-chain', 'body-filter', 'tenants-1000', 'node-proxy', 'fastify', 'fastify-onsend', 'nginx', 'direct'];
  const headRows: string[] = [
    '| target | req/s | p99 ms | gateway CPU µs/req | req/s vs lean Node | req/s vs nginx |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const id of headlineIds) {
    const s = sum(id);
    if (s === null) continue;
    const t = byId.get(id)!;
    const isIso = t.group === 'isogate';
    headRows.push(`| ${t.label} | ${fmtS(s.rps)} | ${fmt(s.p99Ms?.median, 2)} | ${fmt(s.cpuUsPerReq?.median, 1)} | ${isIso ? fmtS(vsNode(id), 2, 'x') : ''} | ${isIso ? fmtS(vsNginx(id), 2, 'x') : ''} |`);
  }
  const headline = headRows.join('\n');
  const runLine = `${d.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${d.flags.mode} run (${d.flags.rounds} rounds x ${d.flags.durationS}s after ${d.flags.warmupS}s warm-up), ${d.loadGenerator.tool}, ${d.loadGenerator.connections} connections; ${m.cpuModel}, ${m.coresAllowed} cores, Node ${m.node}, commit ${m.git.commit?.slice(0, 10) ?? 'unknown'}${m.git.dirty === true ? ' (dirty)' : ''}`;

  L.push('# Isogate benchmark report', '');
  L.push(runLine, '');
  L.push(`- Machine: ${m.cpuModel}, ${m.cores} cores (${m.coresAllowed} usable), ${m.memoryGb} GB, Linux ${m.kernel}, host id ${m.hostId}`);
  L.push(`- Versions: Node ${m.node}, ${Object.entries(m.versions).map(([k, v]) => `${k} ${v ?? 'absent'}`).join(', ')}`);
  L.push(`- Commit: ${m.git.commit ?? 'unknown'}${m.git.dirty === true ? ' (uncommitted changes)' : ''}`);
  L.push(`- Load generator: **${d.loadGenerator.tool}**, ${d.loadGenerator.threads} thread(s), ${d.loadGenerator.connections} connections, CPUs ${d.loadGenerator.cpus?.join(',') ?? 'any'}`);
  L.push(`- Pinning: ${d.pinning.note}`);
  L.push(`- Machine load: 1-minute load average ${fmt(d.loadAvg.start, 2)} at the start, ${fmt(d.loadAvg.end, 2)} at the end${d.loadAvg.start > 0.7 ? ' — **the machine was busy with other work when the run began; treat the figures with care**' : ''}.`);
  L.push(`- Run: ${d.flags.rounds} interleaved rounds (every target once per round, in the same order), ${d.flags.warmupS}s warm-up + ${d.flags.durationS}s measured each; figures are the median of rounds with (min–max); ratios are computed per round from targets measured in that round. Took ${Math.round(d.elapsedS)} s.`);
  if (d.flags.cpuProf) L.push('- **--cpu-prof was on: the proxy-0 and plugins-5 gateways ran under the V8 profiler; their figures are inflated.**');
  if (d.flags.mode === 'smoke') L.push('- **Smoke run: one short round, numbers are meaningless; it only proves the harness works.**');
  L.push('', '## Headline', '', headline, '');
  L.push('![throughput](throughput.svg)', '', '![gateway CPU per request](overhead.svg)', '');
  L.push('## Targets (measured, not asserted)', '', '| what | target | measured | |', '|---|---|---|---|');
  for (const c of checks) L.push(`| ${c.name} | ${c.target} | ${c.measured} | ${metCell(c)}${c.note === '' ? '' : ` (${c.note})`} |`);
  L.push('', '## Every load target', '');
  L.push('CPU is the server\'s own utime+stime from /proc/<pid>/stat over the measured part (with its children when multi-process); "core use" is that CPU time per wall second (1.00 = the pinned core was saturated; lower means the load generator or upstream was the limit).', '');
  L.push('"Other on core" is the CPU time per wall second that something else (another process, softirq work for the loopback traffic) used on the pinned core: well above ~0.1 means the machine was not quiet.', '');
  L.push('| target | scenario | req/s | p50 ms | p99 ms | errors | CPU µs/req | core use | other on core | what |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const t of d.targets) {
    const s = sum(t.id);
    if (s === null) {
      L.push(`| ${t.label} | ${t.scenario} | ${t.error === null ? 'not run' : `failed: ${t.error}`} | | | | | | | ${t.description} |`);
      continue;
    }
    L.push(`| ${t.label} | ${t.scenario} | ${fmtS(s.rps)} | ${fmtS(s.p50Ms, 2)} | ${fmtS(s.p99Ms, 2)} | ${s.errors} | ${t.cpu ? fmtS(s.cpuUsPerReq, 1) : '-'} | ${t.cpu ? fmt(s.util?.median, 2) : '-'} | ${fmt(s.otherCpu?.median, 2)} | ${t.description}${t.error === null ? '' : ` (failed in a later round: ${t.error})`} |`);
  }
  L.push('', '## Per-plugin overhead', '');
  L.push('(CPU per request at n plugins − CPU per request at proxy-0) / n, per round. The unsandboxed equivalent is the fastify onSend hook: fastify+onSend − fastify.', '');
  L.push('| chain | gateway CPU µs/req | per plugin µs | req/s vs proxy-0 |', '|---|---:|---:|---:|');
  L.push(`| proxy-0 | ${fmtS(sum('proxy-0')?.cpuUsPerReq ?? null, 1)} | | |`);
  if (sum('proxy-0-nolog') !== null) L.push(`| proxy-0, access log off | ${fmtS(sum('proxy-0-nolog')?.cpuUsPerReq ?? null, 1)} | access log: ${fmtS(accessLogCpu, 2)} | ${fmtS(ratios['proxy-0-nolog/proxy-0'], 2, 'x')} |`);
  for (const n of [1, 5, 10]) L.push(`| plugins-${n} | ${fmtS(sum(`plugins-${n}`)?.cpuUsPerReq ?? null, 1)} | ${fmtS(perPlugin[n], 2)} | ${fmtS(ratios[`plugins-${n}/proxy-0`], 2, 'x')} |`);
  L.push(`| fastify onSend hook (unsandboxed) | ${fmtS(sum('fastify-onsend')?.cpuUsPerReq ?? null, 1)} | ${fmtS(hookOverhead, 2)} | |`);
  L.push('', '### Per-plugin cost next to OpenResty and a naive isolated-vm gateway', '');
  L.push('The same header plugin (read a request header; set a response header in access and in the header filter) in OpenResty (nginx + lua-nginx-module, one worker: `openresty-n`) and in a naive isolated-vm gateway (node:http + undici, one isolate per plugin, one timed `applySync` per plugin per phase: `naive-ivm-n`), each against its own 0-plugin baseline, computed per round like the figures above. Gateway CPU µs per request; the fastify hook is the unsandboxed cost of one plugin.', '');
  const dc = (k: string) => designCost[k];
  const costRow = (what: string, f: (c: (typeof designCost)[string]) => string, hook = '') => L.push(`| ${what} | ${DESIGNS.map((g) => f(dc(g.key))).join(' | ')} | ${hook} |`);
  L.push(`| | ${DESIGNS.map((g) => g.label).join(' | ')} | fastify onSend (unsandboxed) |`, `|---|${DESIGNS.map(() => '---:|').join('')}---:|`);
  costRow('0 plugins: CPU µs/req', (c) => fmt(c.baseCpuUs?.median, 1), fmt(sum('fastify')?.cpuUsPerReq?.median, 1));
  costRow('first plugin (1 − 0)', (c) => fmtS(c.first, 2), fmtS(hookOverhead, 2));
  costRow('at 5: per plugin ((5 − 0) / 5)', (c) => fmtS(c.average5, 2));
  costRow('at 5: each further ((5 − 1) / 4)', (c) => fmtS(c.further5, 2));
  costRow('at 10: per plugin ((10 − 0) / 10)', (c) => fmtS(c.average10, 2));
  costRow('at 10: each further ((10 − 1) / 9)', (c) => fmtS(c.further10, 2));
  costRow('req/s at 10 vs 0', (c) => fmtS(c.rps10vs0, 2, 'x'));
  L.push('', '## Body filter (64 KB)', '');
  L.push(`body-filter vs the lean Node proxy on the same 64 KB body: ${fmtS(ratios['body-filter/node-proxy-64k'], 2, 'x')} req/s, ${fmtS(cpuVsNode('body-filter'), 2, 'x')} CPU per request; vs nginx: ${fmtS(vsNginx('body-filter'), 2, 'x')} req/s.`);
  L.push('', `## tenants-1000 (${tenantsN} tenants)`, '');
  const ts = sum('tenants-1000');
  const rssStart = tenantsT?.samples[0]?.rssAtStart;
  L.push('| | value |', '|---|---:|');
  L.push(`| req/s | ${fmtS(ts?.rps ?? null)} |`, `| p99 ms | ${fmtS(ts?.p99Ms ?? null, 2)} |`);
  L.push(`| req/s vs 1 tenant (plugins-1) | ${fmtS(ratios['tenants-1000/plugins-1'], 2, 'x')} |`, `| p99 vs 1 tenant | ${fmtS(ratios['tenants-1000/plugins-1 p99'], 2, 'x')} |`);
  L.push(`| RSS at start (no isolate yet) | ${rssStart === undefined ? '-' : `${fmt(rssStart / MB, 0)} MB`} |`);
  L.push(`| RSS after the load (every isolate live) | ${fmtS(summarize(tenantsT?.samples.map((s) => (s.rss ?? NaN) / MB) ?? []), 0, ' MB')} |`);
  L.push(`| RSS per tenant ((after − start) / tenants) | ${fmtS(rssPerTenant, 2, ' MB')} |`);
  L.push('', '## Cold start', '');
  L.push(`Per round a fresh gateway with ${d.cold[0]?.tenants ?? d.flags.coldTenants} tenants (plus one to warm the gateway's own code); for each tenant, one request that creates its isolate, then one warm request, one at a time on one keep-alive connection. Added latency = cold − warm at the same percentile.`, '');
  L.push('| | p50 ms | p99 ms |', '|---|---:|---:|');
  L.push(`| cold (first request of a tenant) | ${fmtS(coldSum.coldP50Ms, 2)} | ${fmtS(coldSum.coldP99Ms, 2)} |`);
  L.push(`| warm (same tenant, next request) | ${fmtS(coldSum.warmP50Ms, 2)} | ${fmtS(coldSum.warmP99Ms, 2)} |`);
  L.push(`| **added by the cold start** | ${fmtS(coldSum.addedP50Ms, 2)} | ${fmtS(coldSum.addedP99Ms, 2)} |`);
  L.push(`| added when pre-warmed (sandbox.prewarm: isolates built before the first request) | ${fmtS(coldSum.prewarmedAddedP50Ms, 2)} | ${fmtS(coldSum.prewarmedAddedP99Ms, 2)} |`);
  L.push('', '## Noisy neighbour', '');
  L.push(`Tenant A's plugin spins \`while(true){}\` until the watchdog stops it at cpuMs ${d.flags.noisyCpuMs}, on every request, from a second load generator (${d.flags.noisyConnections} connections); tenant B runs one header plugin. In the 10-tenant variant, ten such tenants at once share the second generator's connections. Every tenant has the gateway's default CPU share (cpuWeight 100, no cap). Targets: B keeps >= 0.9x throughput, p99 <= 1.2x solo, zero errors.`, '');
  L.push('| tenant B | req/s | p50 ms | p99 ms | errors |', '|---|---:|---:|---:|---:|');
  for (const [label, solo, under, n] of [['1 noisy', 'noisy-solo', 'noisy-under', noisy], ['10 noisy', 'noisy10-solo', 'noisy10-under', noisy10]] as const) {
    const ns = sum(solo);
    const nu = sum(under);
    if (ns === null && nu === null) continue;
    L.push(`| ${label}: solo | ${fmtS(ns?.rps ?? null)} | ${fmtS(ns?.p50Ms ?? null, 2)} | ${fmtS(ns?.p99Ms ?? null, 2)} | ${ns?.errors ?? '-'} |`);
    L.push(`| ${label}: under noise | ${fmtS(nu?.rps ?? null)} | ${fmtS(nu?.p50Ms ?? null, 2)} | ${fmtS(nu?.p99Ms ?? null, 2)} | ${nu?.errors ?? '-'} |`);
    L.push(`| **${label}: ratio** | ${fmtS(n.rpsRatio, 2, 'x')} | | ${fmtS(n.p99Ratio, 2, 'x')} | |`);
  }
  L.push('', `The noisy tenants meanwhile: ${fmtS(noisy.noisyTenant.rps, 1)} req/s answered, ${noisy.noisyTenant.failed ?? '-'} failed (1 noisy); ${fmtS(noisy10.noisyTenant.rps, 1)} req/s, ${noisy10.noisyTenant.failed ?? '-'} failed (10 noisy). Expected: every one of their requests fails with a 5xx.`);
  L.push('', '## One tenant, a 2 ms plugin, an idle gateway', '');
  L.push(`A plugin needing ~2 ms of CPU per request, the gateway's default CPU share (work conserving: no throttling unless other tenants compete). The old default (a hard 200 ms/s budget) allowed ~100 req/s. Measured: ${fmtS(solo2ms.rps)} req/s, ${solo2ms.throttled ?? '-'} throttled (non-2xx) answers.`);
  L.push('', '## Multi-core', '');
  if (!d.workersSupported) L.push('skipped: gateway has no --workers yet (`core/cli.ts --help` does not mention it).');
  else {
    L.push('Not pinned: the workers, the load generator and the upstream share every core, so these are whole-machine figures; nginx (a master and 1 or N workers, `reuseport`) runs under the same conditions in the same rounds, and its ratio is what the machine lets a second worker add. "vs nginx" is the per-round ratio over nginx\'s ratio. "least share": the smallest worker\'s share of the requests (0.50 with two workers is an even spread), from the supervisor\'s `/status` per-worker counts.', '');
    L.push('| profile | 1 worker req/s | all workers req/s | ratio | vs nginx | least share | CPU µs/req (1 / all) |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const p of ['proxy-0', 'plugins-5', 'nginx'] as const) {
      const a = sum(`${p}-w1`);
      const b = sum(`${p}-wN`);
      const vs = p === 'nginx' ? '1.00x' : fmtS(multiVsNginx[p], 2, 'x');
      const share = p === 'nginx' ? '-' : fmtS(leastShare(`${p}-wN`), 2);
      L.push(`| ${p} | ${fmtS(a?.rps ?? null)} | ${fmtS(b?.rps ?? null)} | ${fmtS(multi[p], 2, 'x')} | ${vs} | ${share} | ${fmt(a?.cpuUsPerReq?.median, 1)} / ${fmt(b?.cpuUsPerReq?.median, 1)} |`);
    }
  }
  const profDir = join(d.outDir, 'profiles');
  if (existsSync(profDir)) {
    L.push('', '## Where the time goes (V8 CPU profiles, --cpu-prof)', '');
    L.push('Self time on the gateway\'s main thread over the whole run (all rounds, warm-up included). Plugin code runs in isolates the profiler does not see: it is inside the native time of `applySync`.', '');
    for (const f of readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      try {
        const h = hotspots(join(profDir, f), 12);
        L.push(`### ${f.replace('.cpuprofile', '')} (${fmt(h.total, 0)} ms busy)`, '', '| self % | function | | self % | file |', '|---:|---|---|---:|---|');
        for (let i = 0; i < Math.max(h.byFunction.length, h.byFile.length); i++) {
          const a = h.byFunction[i];
          const b = h.byFile[i];
          L.push(`| ${a === undefined ? '' : a.pct.toFixed(1)} | ${a === undefined ? '' : '`' + a.name + '`'} | | ${b === undefined ? '' : b.pct.toFixed(1)} | ${b === undefined ? '' : '`' + b.name + '`'} |`);
        }
        L.push('');
      } catch (err) {
        L.push(`${f}: unreadable (${(err as Error).message})`, '');
      }
    }
  }
  L.push('', '## Scenarios', '', '| scenario | status | |', '|---|---|---|');
  for (const s of d.scenarios) L.push(`| ${s.name} | ${s.status} | ${s.reason ?? s.description} |`);
  L.push('', 'Raw figures of every round: report.json. Configs the gateways ran: configs/ next to this file (not kept in latest/).', '');
  const md = L.join('\n');

  // --- charts ---
  const loadBars: Bar[] = d.targets.map((t) => ({ label: t.label, s: sum(t.id)?.rps ?? null, group: t.group }));
  const cpuBars: Bar[] = d.targets.filter((t) => t.cpu).map((t) => ({ label: t.label, s: sum(t.id)?.cpuUsPerReq ?? null, group: t.group }));
  const note = `${m.cpuModel}, ${m.coresAllowed} cores, ${d.loadGenerator.tool}, ${d.loadGenerator.connections} conns, ${d.flags.rounds} rounds; ${d.startedAt.slice(0, 10)}`;
  writeFileSync(join(d.outDir, 'throughput.svg'), barChart('Throughput (requests/s, server pinned to one core)', 'requests/s', loadBars, note));
  writeFileSync(join(d.outDir, 'overhead.svg'), barChart('Server CPU time per request', 'µs of CPU per request', cpuBars, note));

  // --- json ---
  const json = {
    schema: 1,
    startedAt: d.startedAt,
    elapsedS: d.elapsedS,
    flags: d.flags,
    machine: d.machine,
    loadGenerator: d.loadGenerator,
    pinning: d.pinning,
    workersSupported: d.workersSupported,
    loadAvg: d.loadAvg,
    scenarios: d.scenarios,
    targets: Object.fromEntries(d.targets.map((t) => [t.id, { label: t.label, group: t.group, scenario: t.scenario, description: t.description, paths: t.paths.length === 1 ? t.paths : `${t.paths.length} paths`, error: t.error, summary: sum(t.id), rounds: t.samples }])),
    ratios,
    perPluginCpuUs: perPlugin,
    perPluginByDesign: designCost,
    accessLogCpuUs: accessLogCpu,
    fastifyHookCpuUs: hookOverhead,
    tenants: { count: tenantsN, rssPerTenantMb: rssPerTenant },
    coldStart: { rounds: d.cold, summary: coldSum },
    noisyNeighbour: noisy,
    noisyNeighbours10: noisy10,
    solo2ms,
    multiCore: d.workersSupported ? { ...multi, vsNginx: multiVsNginx, leastShare: { 'proxy-0': leastShare('proxy-0-wN'), 'plugins-5': leastShare('plugins-5-wN') } } : 'skipped: gateway has no --workers yet',
    targetsCheck: checks,
  };
  writeFileSync(join(d.outDir, 'report.md'), md);
  writeFileSync(join(d.outDir, 'report.json'), JSON.stringify(json, null, 2) + '\n');

  if (opts.latest) {
    const latest = join(ROOT, 'bench', 'results', 'latest');
    mkdirSync(latest, { recursive: true });
    for (const f of ['report.md', 'report.json', 'throughput.svg', 'overhead.svg']) copyFileSync(join(d.outDir, f), join(latest, f));
    const readme = join(ROOT, 'bench', 'README.md');
    if (existsSync(readme)) {
      const text = readFileSync(readme, 'utf8');
      const a = '<!-- bench:latest:start -->';
      const b = '<!-- bench:latest:end -->';
      const i = text.indexOf(a);
      const j = text.indexOf(b);
      if (i >= 0 && j > i) {
        const met = checks.filter((c) => c.met === true).length;
        const known = checks.filter((c) => c.met !== null).length;
        const block = `${a}\nLatest: [bench/results/latest/report.md](results/latest/report.md) — ${runLine} (copied from \`${relative(ROOT, d.outDir)}\`).\n\n${headline}\n\nTargets met: ${met} of ${known} measured (see the report's "Targets" table).\n${b}`;
        writeFileSync(readme, text.slice(0, i) + block + text.slice(j + b.length));
      }
    }
  }
  return { headline };
}

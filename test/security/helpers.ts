/**
 * Shared setup of the security suite: a "lab" gateway with
 *  - tenant `evil`: route /evil runs the attack plugin under test (module name `evil`),
 *    route /calm runs a benign plugin in the SAME isolate (checks the isolate recovers);
 *  - tenant `good`: route /good runs a benign plugin in its own isolate (the neighbour that
 *    must keep working, also while the attack runs);
 *  - tenant `bare`: route /bare without plugins;
 * a real echo upstream, log lines captured in memory, and helpers for the admin /metrics.
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../core/gateway.ts';
import { echoHandler, startUpstream, writeConfig, type Upstream } from '../helpers/gateway.ts';

/** A benign plugin: sets x-benign on the response (access) and logs one line. */
export const BENIGN = `
export const name = 'benign';
export const version = '1.0.0';
export const priority = 10;
export function access(pdk) { pdk.response.setHeader('x-benign', 'ok'); }
`;

/** Wraps handler source into a module named `name` (default `evil`). */
export function plugin(body: string, name = 'evil', priority = 100): string {
  return `export const name = ${JSON.stringify(name)};\nexport const version = '6.6.6';\nexport const priority = ${priority};\n${body}\n`;
}

export type LabOptions = {
  /** Source of the attack module (use plugin()). */
  evil: string;
  cpuMs?: number;
  memoryMb?: number;
  failOpen?: boolean;
  /** Config object of the evil instance. */
  config?: Record<string, unknown>;
  /** Extra files next to the config. */
  files?: Record<string, string>;
  /** Full YAML override (then `evil`, limits, etc. only provide files). UP is replaced by the upstream URL. */
  yaml?: string;
  upstream?: Parameters<typeof startUpstream>[0];
  logLevel?: string;
  /** Breaker of the evil tenant (default: effectively off, so one file may send several attacks). */
  breaker?: { faults: number; windowMs: number; cooldownMs: number };
  /** cpuBudgetMs of the evil tenant (default 1000, the ceiling). */
  cpuBudgetMs?: number;
};

export type LogLine = Record<string, unknown> & { msg?: string; tenant?: string; level?: number };

/**
 * For a lab whose test writes its own YAML (LabOptions.yaml): the neighbour tenants, to put
 * after its `evil` tenant under `tenants:`. `good` runs the benign plugin, `bare` none.
 */
export const NEIGHBOURS = `
  - name: good
    services: [{ name: s, url: "UP" }]
    routes: [{ name: good, service: s, paths: [/good] }]
    plugins: [{ name: benign, path: ./benign.ts }]
  - name: bare
    services: [{ name: s, url: "UP" }]
    routes: [{ name: bare, service: s, paths: [/bare] }]
`;

/**
 * A lab's YAML whose `evil` plugin calls out (pdk.http) to the lab's upstream, whose URL it
 * gets as config.up: tenant `evil` (/evil runs it, /calm the benign plugin in the same
 * isolate, breaker effectively off) with `cpuMs`, then the NEIGHBOURS.
 */
export function callingOutYaml(cpuMs: number): string {
  return `
tenants:
  - name: evil
    limits: { cpuMs: ${cpuMs} }
    breaker: { faults: 1000, windowMs: 1000, cooldownMs: 1 }
    http: { allow: ["127.0.0.1"] }
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - { name: evil, path: ./evil.ts, route: evil, config: { up: "UP" } }
      - { name: benign, path: ./benign.ts, route: calm }${NEIGHBOURS}`;
}

export type Lab = {
  gw: Gateway;
  up: Upstream;
  url: string;
  adminUrl: string;
  port: number;
  /** Parsed log lines, in order. */
  logs: LogLine[];
  /** Raw log chunks as pino wrote them. */
  rawLogs: string[];
  stop(): Promise<void>;
};

export async function startLab(o: LabOptions): Promise<Lab> {
  const up = await startUpstream(o.upstream ?? echoHandler);
  const cpu = o.cpuMs ?? 50;
  const mem = o.memoryMb ?? 16;
  const yaml = (o.yaml ?? `
tenants:
  - name: evil
    limits: { cpuMs: ${cpu}, memoryMb: ${mem}, cpuBudgetMs: ${o.cpuBudgetMs ?? 1000} }
    breaker: ${JSON.stringify(o.breaker ?? { faults: 1000, windowMs: 1000, cooldownMs: 1 })}
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - name: evil
        path: ./evil.ts
        route: evil
        failOpen: ${o.failOpen === true}
        limits: { cpuMs: ${cpu}, memoryMb: ${mem} }
        config: ${JSON.stringify(o.config ?? {})}
      - { name: benign, path: ./benign.ts, route: calm }
  - name: good
    limits: { cpuMs: 50, memoryMb: 16 }
    services: [{ name: s, url: "UP" }]
    routes: [{ name: good, service: s, paths: [/good] }]
    plugins:
      - { name: benign, path: ./benign.ts }
  - name: bare
    services: [{ name: s, url: "UP" }]
    routes: [{ name: bare, service: s, paths: [/bare] }]
`).replaceAll('UP', up.url);
  const configFile = writeConfig(yaml, { 'evil.ts': o.evil, 'benign.ts': BENIGN, ...o.files });
  const logs: LogLine[] = [];
  const rawLogs: string[] = [];
  const logger = pino({ level: o.logLevel ?? 'info', base: { pid: process.pid } }, {
    write(s: string) {
      rawLogs.push(s);
      for (const line of s.split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine);
    },
  });
  let gw: Gateway;
  try {
    gw = await Gateway.start({ configFile, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, logger, accessLog: false });
  } catch (err) {
    await up.close();
    throw err;
  }
  return {
    gw,
    up,
    logs,
    rawLogs,
    port: gw.proxyAddress.port,
    url: `http://127.0.0.1:${gw.proxyAddress.port}`,
    adminUrl: `http://127.0.0.1:${gw.adminAddress!.port}`,
    stop: async () => {
      await gw.stop(200);
      await up.close();
    },
  };
}

const agent = new Agent({ keepAliveTimeout: 500, connections: 64, headersTimeout: 8000, bodyTimeout: 8000 });

export type Reply = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
  json<T = any>(): T;
};

/** One request over a real socket; never throws for an HTTP status (8 s timeout). */
export async function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const t0 = performance.now();
  const r = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher: agent });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body, ms: performance.now() - t0, json: () => JSON.parse(body) };
}

/** The reply is the gateway's plugin-failure answer: 500 {error:{code:'ISG_ERR_PLUGIN_FAILED', id}}. */
export function expectPluginFailed(r: Reply): string {
  expect(r.status, `body: ${r.body.slice(0, 300)}`).toBe(500);
  const j = r.json() as { error: { code: string; id: string; message: string } };
  expect(j.error.code).toBe('ISG_ERR_PLUGIN_FAILED');
  expect(j.error.id).toMatch(/^[0-9a-f]{16}$/);
  expect(r.headers['x-isogate-error-id']).toBe(j.error.id);
  // nothing of the fault's detail reaches the client
  expect(Object.keys(j.error).sort()).toEqual(['code', 'id', 'message']);
  expect(j.error.message).toBe('a plugin failed while handling this request');
  return j.error.id;
}

/** isogate_plugin_failures_total summed over series matching the given labels. */
export async function failures(lab: Lab, reason: string, labels: { tenant?: string; plugin?: string } = {}): Promise<number> {
  const text = await (await request(`${lab.adminUrl}/metrics`, { dispatcher: agent })).body.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^isogate_plugin_failures_total\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const l: Record<string, string> = {};
    for (const kv of m[1].matchAll(/(\w+)="([^"]*)"/g)) l[kv[1]] = kv[2];
    if (l.reason !== reason) continue;
    if (l.tenant !== (labels.tenant ?? 'evil')) continue;
    if (labels.plugin !== undefined && l.plugin !== labels.plugin) continue;
    sum += Number(m[2]);
  }
  return sum;
}

/** The evil plugin's failures by reason, from /metrics (for a failure message). */
export async function failuresByReason(lab: Lab): Promise<Record<string, number>> {
  const text = await (await request(`${lab.adminUrl}/metrics`, { dispatcher: agent })).body.text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^isogate_plugin_failures_total\{[^}]*plugin="evil"[^}]*reason="(\w+)"[^}]*\} (\S+)$/gm)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  return out;
}

/** The neighbour tenant is served normally. */
export async function expectGoodServed(lab: Lab): Promise<void> {
  const r = await send(`${lab.url}/good`);
  expect(r.status).toBe(200);
  expect(r.headers['x-benign']).toBe('ok');
}

/** Runs the evil request and, concurrently, one of the neighbour tenant; asserts the neighbour succeeded. */
export async function attack(lab: Lab, path = '/evil', opts: Parameters<typeof send>[1] = {}): Promise<Reply> {
  const [evil, good] = await Promise.all([send(`${lab.url}${path}`, opts), send(`${lab.url}/good`)]);
  expect(good.status).toBe(200);
  expect(good.headers['x-benign']).toBe('ok');
  return evil;
}

/** After an attack: the neighbour, the plugin-less tenant and (optionally) the attacker's own isolate still serve. */
export async function expectStillServes(lab: Lab, opts: { calm?: boolean } = {}): Promise<void> {
  await expectGoodServed(lab);
  const bare = await send(`${lab.url}/bare`);
  expect(bare.status).toBe(200);
  if (opts.calm !== false) {
    let calm = await send(`${lab.url}/calm`);
    // /calm is the attacker's own tenant: an attack that burnt CPU up to its limit on a
    // saturated worker can leave that tenant over its fair share for a moment, answered with
    // the documented 503 and Retry-After (SECURITY.md, CPU share). The isolate's recovery is
    // judged once it is served again.
    if (calm.status === 503 && calm.json().error?.code === 'ISG_ERR_TENANT_THROTTLED') {
      await new Promise((r) => setTimeout(r, Math.min(2, Number(calm.headers['retry-after']) || 1) * 1000));
      calm = await send(`${lab.url}/calm`);
    }
    expect(calm.status).toBe(200);
    expect(calm.headers['x-benign']).toBe('ok');
  }
}

/** Fault log lines of the gateway (recordFault). */
export function faultLogs(lab: Lab): LogLine[] {
  return lab.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('plugin fault'));
}

/** Sends raw bytes and collects what comes back for `ms` (or until the server closes). */
export function rawExchange(port: number, data: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const done = () => {
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(done, ms);
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.write(data);
  });
}

/**
 * The common shape of a CPU attack: one lab, one attack request that must fail fast with
 * outcome "cpu" (counted, and logged with tenant and plugin), the neighbour served.
 */
export function describeCpuAttack(title: string, evil: string, cpuMs = 30): void {
  describe(title, () => {
    let lab: Lab;
    beforeAll(async () => {
      lab = await startLab({ evil, cpuMs });
    });
    afterAll(async () => {
      await lab.stop();
    });

    it('fails the request fast with outcome "cpu"; the neighbour tenant is served meanwhile', async () => {
      const r = await attack(lab);
      expectPluginFailed(r);
      expect(r.ms).toBeLessThan(1500);
      expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(1);
      const f = faultLogs(lab).find((l) => l.reason === 'cpu');
      expect(f?.tenant).toBe('evil');
      expect(f?.plugin).toBe('evil');
      await expectStillServes(lab);
    });
  });
}

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startUpstream, waitFor, type Reply, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

const TOKEN = 'supervisor-operator';

/** The real CLI with a supervisor and two workers: the supervisor serves the API, writes the file and waits for every worker. */
describe('admin API under the supervisor (real CLI, two workers)', () => {
  let up: Upstream;
  let gp: GatewayProcess;
  let configFile = '';
  const api = (path: string, method = 'GET', body?: unknown): Promise<Reply> =>
    send(`${gp.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const yaml = (u: Upstream) => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT}, tokens: [{ name: ops, sha256: ${createHash('sha256').update(TOKEN).digest('hex')} }] }
workers: 2
tenants:
  - name: acme
    services: [{ name: base, url: "${u.url}" }]
    routes: [{ name: base, service: base, paths: [/base] }]
`;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gp = await spawnGateway(yaml(up));
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gp?.stop();
    await up?.close();
  });

  it('a POSTed service, route and plugin serve on every worker as soon as the API answers', async () => {
    expect((await api('/tenants/acme/services', 'POST', { name: 'orders', url: `${up.url}/v1` })).status).toBe(201);
    expect((await api('/tenants/acme/routes', 'POST', { name: 'orders', service: 'orders', paths: ['/orders'], stripPath: true })).status).toBe(201);
    const p = await api('/tenants/acme/plugins', 'POST', { name: 'correlation-id', route: 'orders', config: { header_name: 'X-Trace' } });
    expect(p.status, p.body).toBe(201);
    // No waiting: the answer came after both workers (and the spare) took the change.
    for (let i = 0; i < 20; i++) {
      const r = await send(`${gp.url}/orders/${i}`, { headers: { connection: 'close' } });
      expect(r.status).toBe(200);
      expect(r.json().url).toBe(`/v1/${i}`);
      expect(r.json().headers['x-trace']).toMatch(/.+/);
    }
  });

  it('a change the workers refuse answers 400 with their field path; the file is restored and the old config keeps serving', async () => {
    const file = (await gp.status()).config.file as string;
    const before = readFileSync(file, 'utf8');
    // Valid for the schema (the supervisor's check), refused when the workers compile it.
    const r = await api('/tenants/acme/routes', 'POST', { name: 'bad', service: 'nowhere', paths: ['/bad'] });
    expect(r.status).toBe(400);
    expect(r.json().error.code).toBe('ISG_ERR_ADMIN_INVALID');
    expect(r.json().error.details).toEqual(['tenants[0].routes[2].service: tenant "acme" has no service "nowhere"']);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect((await send(`${gp.url}/orders/1`)).status).toBe(200);
    expect((await send(`${gp.url}/bad`)).status).toBe(404);
    const conflict = await api('/tenants', 'POST', { name: 'other', services: [{ name: 's', url: up.url }], routes: [{ name: 'r', service: 's', paths: ['/orders'] }] });
    expect(conflict.status).toBe(409);
    expect(readFileSync(file, 'utf8')).toBe(before);
    configFile = file;
  });

  it('a restart of the CLI keeps the changes', async () => {
    await gp.stop();
    const config = parse(readFileSync(configFile, 'utf8'));
    // Fresh ports: the placeholders back where the first run's ports were; everything else as the API wrote it.
    config.listen.port = '${PORT}';
    config.admin.port = '${ADMIN_PORT}';
    gp = await spawnGateway(stringify(config));
    const r = await send(`${gp.url}/orders/9`);
    expect(r.status).toBe(200);
    expect(r.json().url).toBe('/v1/9');
    expect((await api('/tenants/acme/routes/orders')).json().stripPath).toBe(true);
  });

  it('workers forked around a change (the spare after a crash) serve it once they take over', async () => {
    const pids = async () => ((await gp.status()).workers.status as { pid: number }[]).map((w) => w.pid);
    const kill = async (pid: number) => {
      process.kill(pid, 'SIGKILL');
      await waitFor(async () => !(await pids()).includes(pid) && (await gp.status()).workers.ready === 2, 20_000, 'a worker to replace the dead one');
    };
    const [first, second] = await pids();
    await kill(first); // the hot spare takes over; a new spare starts loading now
    expect((await api('/tenants/acme/routes', 'POST', { name: 'late', service: 'base', paths: ['/late'] })).status).toBe(201);
    await waitFor(async () => (await gp.status()).workers.spareReady === true, 20_000, 'the new spare');
    // The new spare, forked just before the change was written, serves now. (Whether it read the file before the
    // write depends on timing; when it did, the supervisor reloads it once it is loaded.)
    await kill(second);
    for (let i = 0; i < 20; i++) expect((await send(`${gp.url}/late`, { headers: { connection: 'close' } })).status).toBe(200);
  });
});

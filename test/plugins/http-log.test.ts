import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, freePort, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

type Received = { path: string; method: string; type: string | undefined; auth: string | undefined; body: any };

/** A real log receiver on 127.0.0.1: /ok answers 200, /slow after 3 s, /fail 500. */
async function startReceiver(): Promise<Upstream & { got: Received[] }> {
  const got: Received[] = [];
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      got.push({ path: req.url!, method: req.method!, type: req.headers['content-type'], auth: req.headers['x-log-auth'] as string | undefined, body: JSON.parse(text) });
      const answer = () => {
        res.writeHead(req.url!.startsWith('/fail') ? 500 : 200);
        res.end();
      };
      if (req.url!.startsWith('/slow')) setTimeout(answer, 3000);
      else answer();
    });
  });
  return Object.assign(up, { got });
}

describe('plugin http-log', () => {
  let up: Upstream;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let gw: TestGateway;
  let lines: LogLine[];
  const logged = (re: RegExp) => lines.filter((l) => re.test(JSON.stringify(l)));
  const at = (path: string) => rx.got.filter((g) => g.path === path);

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    rx = await startReceiver();
    const refusedPort = await freePort();
    const closedPort = await freePort(); // allowlisted, nobody listens
    const captured = captureLogger('debug');
    lines = captured.lines;
    const route = (n: string) => `      - { name: ${n}, service: s, paths: [/${n}] }`;
    const rx_ = (p: string) => `http://127.0.0.1:${rx.port}/${p}`;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    http: { allow: ["127.0.0.1:${rx.port}", "127.0.0.1:${closedPort}"] }
    services: [{ name: s, url: "${up.url}" }]
    routes:
${['batch', 'delay', 'one', 'refused', 'closed', 'slow', 'fail', 'bound', 'bytes', 'retrytime'].map(route).join('\n')}
    plugins:
      - { name: http-log, route: batch, config: { http_endpoint: "${rx_('batch')}", headers: { x-log-auth: sesame }, queue: { max_batch_size: 5, max_coalescing_delay: 3600 } } }
      - { name: http-log, route: delay, config: { http_endpoint: "${rx_('delay')}", method: PUT, content_type: "application/json; charset=utf-8", queue: { max_batch_size: 100, max_coalescing_delay: 0.3 } } }
      - { name: http-log, route: one, config: { http_endpoint: "${rx_('one')}" } }
      - { name: http-log, route: refused, config: { http_endpoint: "http://127.0.0.1:${refusedPort}/x", retry_count: 0 } }
      - { name: http-log, route: closed, config: { http_endpoint: "http://127.0.0.1:${closedPort}/x", retry_count: 0 } }
      - { name: http-log, route: slow, config: { http_endpoint: "${rx_('slow')}", timeout: 500, retry_count: 0 } }
      - { name: http-log, route: fail, config: { http_endpoint: "${rx_('fail')}", retry_count: 2, queue: { initial_retry_delay: 0.001 } } }
      - { name: http-log, route: bytes, config: { http_endpoint: "${rx_('bytes')}", queue: { max_bytes: 100 } } }
      - { name: http-log, route: retrytime, config: { http_endpoint: "${rx_('fail-rt')}", retry_count: 1000, queue: { initial_retry_delay: 0.001, max_retry_delay: 0.001, max_retry_time: 0.3 } } }
      - { name: http-log, route: bound, config: { http_endpoint: "${rx_('bound')}", queue: { max_entries: 3, max_batch_size: 10, max_coalescing_delay: 0.5 } } }
`, {}, { logger: captured.logger });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
    await rx?.close();
  });

  it('entries arrive batched (a JSON array of Kong serializer entries) once max_batch_size are waiting', async () => {
    for (let i = 0; i < 4; i++) expect((await send(`${gw.url}/batch/${i}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(at('/batch')).toEqual([]); // 4 of 5: waiting
    await send(`${gw.url}/batch/4`);
    const [b] = await waitFor(() => (at('/batch').length > 0 ? at('/batch') : null), 5000, 'the batch');
    expect(b).toMatchObject({ method: 'POST', type: 'application/json', auth: 'sesame' });
    expect(Array.isArray(b.body)).toBe(true);
    expect(b.body.map((e: any) => e.request.uri)).toEqual(['/batch/0', '/batch/1', '/batch/2', '/batch/3', '/batch/4']);
    expect(b.body[0]).toMatchObject({ response: { status: 200 }, route: { name: 'batch' }, service: { name: 's' } });
    expect(typeof b.body[0].started_at).toBe('number');
  });

  it('an incomplete batch goes with the first request logged after max_coalescing_delay', async () => {
    await send(`${gw.url}/delay/a`);
    await send(`${gw.url}/delay/b`);
    await new Promise((r) => setTimeout(r, 450));
    expect(at('/delay')).toEqual([]);
    await send(`${gw.url}/delay/c`);
    const [b] = await waitFor(() => (at('/delay').length > 0 ? at('/delay') : null), 5000, 'the batch');
    expect(b).toMatchObject({ method: 'PUT', type: 'application/json; charset=utf-8' });
    expect(b.body.map((e: any) => e.request.uri)).toEqual(['/delay/a', '/delay/b', '/delay/c']);
  });

  it('max_batch_size 1 (default): one JSON object per request', async () => {
    await send(`${gw.url}/one/x`);
    const [b] = await waitFor(() => (at('/one').length > 0 ? at('/one') : null), 5000, 'the entry');
    expect(Array.isArray(b.body)).toBe(false);
    expect(b.body.request.uri).toBe('/one/x');
  });

  it('an endpoint outside the allowlist: the client is served, the batch dropped and logged', async () => {
    expect((await send(`${gw.url}/refused`)).status).toBe(200);
    await waitFor(() => logged(/http-log: a batch of 1 entries .* was dropped after 1 tries.*not in this tenant's allowlist/).length > 0, 5000, 'the refusal logged');
  });

  it('an allowlisted endpoint refusing connections: the client is served, the batch dropped and logged', async () => {
    expect((await send(`${gw.url}/closed`)).status).toBe(200);
    await waitFor(() => logged(/http-log: a batch of 1 entries .* was dropped after 1 tries.*ECONNREFUSED/).length > 0, 5000, 'the refusal logged');
  });

  it('a slow receiver does not slow the client; its timeout is logged', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) expect((await send(`${gw.url}/slow/${i}`)).status).toBe(200);
    // Each answer comes before its log phase runs: 5 requests well under one 3 s receiver answer.
    expect(Date.now() - t0).toBeLessThan(2000);
    await waitFor(() => logged(/http-log: a batch of 1 entries .*slow.* was dropped.*timed out/).length > 0, 5000, 'the timeout logged');
  });

  it('a failing receiver: retried by later requests, then dropped; the client is served', async () => {
    for (let i = 0; i < 6; i++) {
      expect((await send(`${gw.url}/fail/${i}`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => logged(/http-log: a batch of 1 entries .*fail.* was dropped after 3 tries.*status 500/).length > 0, 5000, 'the drop logged');
    expect(at('/fail').length).toBeGreaterThanOrEqual(3);
    expect(at('/fail').slice(0, 3).map((g) => g.body.request.uri)).toEqual(['/fail/0', '/fail/0', '/fail/0']);
  });

  it('the queue is bounded: entries past max_entries are dropped, counted and logged', async () => {
    for (let i = 0; i < 10; i++) await send(`${gw.url}/bound/${i}`);
    expect(logged(/http-log: queue full \(max_entries 3, max_bytes null\): 1 entries dropped so far/).length).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    await send(`${gw.url}/bound/late`);
    const [b] = await waitFor(() => (at('/bound').length > 0 ? at('/bound') : null), 5000, 'the batch');
    expect(b.body.map((e: any) => e.request.uri)).toEqual(['/bound/0', '/bound/1', '/bound/2']);
  });

  it('max_bytes bounds the characters waiting: an entry past it is dropped', async () => {
    for (let i = 0; i < 3; i++) expect((await send(`${gw.url}/bytes/${i}`)).status).toBe(200);
    expect(logged(/http-log: queue full \(max_entries 10000, max_bytes 100\): 1 entries dropped so far/).length).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(at('/bytes')).toEqual([]);
  });

  it('max_retry_time: a batch failing longer than that is dropped, whatever retry_count allows', async () => {
    const until = Date.now() + 1500;
    while (Date.now() < until && logged(/dropped after \d+ tries.*status 500/).filter((l) => JSON.stringify(l).includes('fail-rt')).length === 0) {
      await send(`${gw.url}/retrytime`);
      await new Promise((r) => setTimeout(r, 30));
    }
    const line = logged(/fail-rt.*dropped after (\d+) tries/)[0];
    expect(line).toBeDefined();
    expect(Number(/after (\d+) tries/.exec(JSON.stringify(line))![1])).toBeLessThan(100);
  });
});

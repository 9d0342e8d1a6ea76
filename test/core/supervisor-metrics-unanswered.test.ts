import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway } from '../helpers/process.ts';

// The supervisor's /metrics asks every serving worker for its figures. One that cannot
// answer (stopped here; in life: busy, dying) is left out of that scrape and counted:
// before, prom-client's aggregator failed the whole scrape with a 500 after 5 s.

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream(echoHandler);
});
afterAll(async () => {
  await up?.close();
});

it('a worker that gives no figures is counted as unanswered; the scrape still answers 200 with the others', async () => {
  const gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
log: { level: info, access: false }
workers: 2
supervisor: { healthTimeoutMs: 20000 }
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
`);
  try {
    const whole = await gw.metrics();
    expect(whole).toMatch(/^isogate_metrics_workers_unanswered 0$/m);
    expect(whole.match(/^isogate_worker_requests_total\{/gm)).toHaveLength(2);
    const [stopped, other] = (await gw.status()).workers.status;
    process.kill(stopped.pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const r = await request(`${gw.adminUrl}/metrics`, { reset: true });
      const text = await r.body.text();
      expect(r.statusCode).toBe(200);
      expect(Date.now() - t0).toBeLessThan(4500);
      expect(text).toMatch(/^isogate_metrics_workers_unanswered 1$/m);
      expect(text).toMatch(new RegExp(`^isogate_worker_requests_total\\{worker="${other.worker}"\\} \\d+$`, 'm'));
      expect(text).not.toMatch(new RegExp(`^isogate_worker_requests_total\\{worker="${stopped.worker}"\\}`, 'm'));
    } finally {
      process.kill(stopped.pid, 'SIGCONT');
    }
    // Its late answer is dropped; the next scrape has both again.
    expect(await gw.metrics()).toMatch(/^isogate_metrics_workers_unanswered 0$/m);
  } finally {
    await gw.stop();
  }
}, 90_000);

import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway } from '../helpers/process.ts';

// The supervisor outlives what its workers do to it: a message it sends to a worker that
// is already exiting, a worker that cannot answer its /metrics. The real CLI, two workers.

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream(echoHandler);
});
afterAll(async () => {
  await up?.close();
});

const yaml = (supervisor: string) => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
log: { level: info, access: false }
workers: 2
supervisor: { ${supervisor} }
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
`;

// A message sent to a worker that is already exiting (a retiring worker still "connected"
// for a moment, pinged every 10 ms here) fails as EPIPE on the IPC channel. That failure is
// the worker's, never the supervisor's: before, it was an 'error' event nobody listened
// to, and the supervisor (every port with it) went down.
it('the supervisor outlives messages sent to workers as they exit', async () => {
  const gw = await spawnGateway(yaml('healthIntervalMs: 10, healthTimeoutMs: 5000'));
  try {
    for (let i = 0; i < 15; i++) {
      const s = await gw.status();
      const serving = s.workers.status.find((w: { state: string }) => w.state === 'serving');
      if (serving !== undefined) process.kill(serving.pid, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      expect(gw.child.exitCode, `supervisor exited after ${i + 1} retirements:\n${gw.output().slice(-3000)}`).toBeNull();
    }
    expect((await fetch(`${gw.url}/still`)).status).toBe(200);
  } finally {
    await gw.stop();
  }
}, 90_000);

// The supervisor's /metrics asks every serving worker for its figures. One that cannot
// answer (stopped here; in life: busy, dying) is left out of that scrape and counted:
// before, prom-client's aggregator failed the whole scrape with a 500 after 5 s.
it('a worker that gives no figures is counted as unanswered; the scrape still answers 200 with the others', async () => {
  const gw = await spawnGateway(yaml('healthTimeoutMs: 20000'));
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

import { afterAll, beforeAll, expect, it } from 'vitest';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway } from '../helpers/process.ts';

// A message the supervisor sends to a worker that is already exiting (a retiring worker
// still "connected" for a moment, pinged every 10 ms here) fails as EPIPE on the IPC
// channel. That failure is the worker's, never the supervisor's: before, it was an
// 'error' event nobody listened to, and the supervisor (every port with it) went down.

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream(echoHandler);
});
afterAll(async () => {
  await up?.close();
});

it('the supervisor outlives messages sent to workers as they exit', async () => {
  const gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
log: { level: info, access: false }
workers: 2
supervisor: { healthIntervalMs: 10, healthTimeoutMs: 5000 }
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
`);
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

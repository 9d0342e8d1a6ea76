import { AggregatorRegistry } from 'prom-client';
import { beacon } from '../sandbox/beacon.ts';
import { Gateway } from './gateway.ts';
import type { ToSupervisor, ToWorker } from './supervisor.ts';

/**
 * A worker process under the supervisor: a full gateway (listener shared with the other
 * workers through node:cluster, router, isolates) without the admin listener, which the
 * supervisor serves for all. Started by core/supervisor.ts, never by hand.
 */
const configFile = process.env.ISOGATE_CONFIG!;
/** A hot spare loads everything but listens only when the supervisor activates it. */
const spare = process.env.ISOGATE_SPARE === '1';
const beaconFile = process.env.ISOGATE_BEACON!;

function send(m: ToSupervisor): void {
  if (process.connected) process.send!(m);
}

beacon.start(beaconFile);
new AggregatorRegistry(); // answers the supervisor's metrics requests over IPC

const gateway = await Gateway.start({
  configFile,
  admin: false,
  deferListen: spare,
  listen: process.env.ISOGATE_PORT !== undefined ? { port: Number(process.env.ISOGATE_PORT) } : undefined,
  onSandbox: (slot, tenant, instances) => send({ t: 'sandbox', slot, tenant, instances: [...instances] }),
}).catch((err: Error) => {
  send({ t: 'failed', error: err.message });
  process.exit(78); // EX_CONFIG: the supervisor does not retry a config that cannot start
});
AggregatorRegistry.setRegistries([gateway.metrics.registry]);

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await gateway.stop();
    await beacon.stop();
  }
  process.exit(code);
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'ping':
      send({ t: 'pong', seq: m.seq });
      break;
    case 'quarantine':
      gateway.quarantine(m.keys);
      break;
    case 'reload':
      void gateway.reload().then((r) => send({ t: 'reloaded', ok: r.ok, error: r.ok ? undefined : r.error, version: r.ok ? r.version : undefined }));
      break;
    case 'status':
      send({ t: 'status', id: m.id, status: gateway.status() });
      break;
    case 'activate':
      void gateway.listen().then(() => send({ t: 'ready', pid: process.pid, port: gateway.proxyAddress.port }));
      break;
    case 'stop':
      void stop(0);
      break;
  }
});
// The supervisor went away: nobody will replace us or route our metrics, so stop.
process.on('disconnect', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => undefined); // the supervisor decides; Ctrl-C reaches the whole group

if (spare) send({ t: 'spare', pid: process.pid });
else send({ t: 'ready', pid: process.pid, port: gateway.proxyAddress.port });

import type { Registry } from 'prom-client';
import { beacon } from '../sandbox/beacon.ts';
import { refuseModules } from '../sandbox/plugin-loader.ts';
import { Gateway } from './gateway.ts';
import type { ToSupervisor, ToWorker } from './supervisor.ts';

/**
 * A worker process under the supervisor: a full gateway (router, isolates, the proxy
 * listener on the socket the supervisor bound for its slot) without the admin listener,
 * which the supervisor serves for all. Forked by the supervisor (core/supervisor/slots.ts), never by hand.
 */
const configFile = process.env.ISOGATE_CONFIG!;
/** A hot spare loads everything but listens only when the supervisor gives it a slot's socket. */
const spare = process.env.ISOGATE_SPARE === '1';
const beaconFile = process.env.ISOGATE_BEACON!;

/** What the supervisor's metrics requests are answered with: none while a hot spare (it serves nothing). */
let metricsRegistries: Registry[] = [];

/** Answers the supervisor's metrics requests with this worker's, labelled with its slot. */
function serveMetrics(gw: Gateway, slot: number): void {
  gw.metrics.labelWorker(String(slot));
  metricsRegistries = [gw.metrics.registry, gw.metrics.perProcess];
}

function send(m: ToSupervisor): void {
  if (process.connected) process.send!(m);
}

// The sentinel thread records the beacon, kills this process when its main thread is wedged
// in plugin code, and when the supervisor is gone (even by SIGKILL), whatever the main
// thread is doing.
beacon.supervised(beaconFile, Number(process.env.ISOGATE_SUPERVISOR_PID));
// Plugin modules whose loading wedged an earlier worker are never run again.
refuseModules((process.env.ISOGATE_REFUSED_MODULES ?? '').split(',').filter((t) => t !== '').map(Number));

let gateway: Gateway | null = null;
let stopping = false;
let stopRequested = false;
/** The socket of the slot this worker serves (core/supervisor/sockets.ts), once the supervisor sent it. */
let socket: object | null = null;
let listening = false;

/** Listens on the slot's socket once both it and the gateway are there; then the supervisor counts this worker as serving. */
function serve(): void {
  const gw = gateway;
  if (gw === null || socket === null || listening || stopping) return;
  listening = true;
  void gw.listen(socket).then(
    () => send({ t: 'ready', pid: process.pid, port: gw.proxyAddress.port }),
    (err: Error) => {
      send({ t: 'failed', error: `cannot listen: ${err.message}` });
      void stop(1);
    },
  );
}

async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await gateway?.stop();
    beacon.stop();
  }
  process.exit(code);
}

// Listening for the supervisor before the gateway loads: a stop sent while we start must
// not wait for a SIGKILL.
process.on('message', (m: ToWorker, handle?: object) => {
  if (m.t === 'quarantine' && m.modules !== undefined) refuseModules(m.modules);
  if (m.t === 'activate' && handle !== undefined) {
    socket = handle;
    return serve();
  }
  if (gateway === null) {
    if (m.t === 'stop') stopRequested = true;
    return;
  }
  const gw = gateway;
  switch (m.t) {
    case 'ping':
      send({ t: 'pong', seq: m.seq });
      break;
    case 'quarantine':
      gw.quarantine(m.keys);
      break;
    case 'reload':
      // The supervisor logs and counts the reload once for every worker: this one only answers.
      void gw.reload({ log: false }).then((r) => {
        send({ t: 'reloaded', seq: m.seq, ok: r.ok, error: r.ok ? undefined : r.error, version: r.ok ? r.version : undefined });
        if (r.ok) send({ t: 'watch', files: gw.watchedFiles() });
      });
      break;
    case 'slot':
      serveMetrics(gw, m.index);
      break;
    case 'status':
      send({ t: 'status', id: m.id, status: gw.status() });
      break;
    case 'metrics':
      void Promise.all(metricsRegistries.map((r) => r.getMetricsAsJSON())).then((all) => send({ t: 'metrics', id: m.id, metrics: all.flat() }));
      break;
    case 'stop':
      void stop(0);
      break;
  }
});
// When the supervisor's channel closes, node:cluster exits this process at once
// (process.exit: the watchdog ends on 'exit'); when the main thread is stuck in plugin code
// and cannot, the sentinel kills the process.
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => undefined); // the supervisor decides; Ctrl-C reaches the whole group

gateway = await Gateway.start({
  configFile,
  admin: false,
  counters: 'worker',
  deferListen: true, // on the slot's socket, when the supervisor sends it
  // Before the proxy stops accepting: the supervisor hands the slot's socket on at once, so
  // the connections the kernel queues on it while this worker drains are not left waiting.
  onStopping: () => send({ t: 'retiring' }),
  onSandbox: (slot, tenant, instances) => send({ t: 'sandbox', slot, tenant, instances: [...instances] }),
}).catch((err: Error) => {
  send({ t: 'failed', error: err.message });
  return process.exit(78); // EX_CONFIG: the supervisor does not retry a config that cannot start
});
// A hot spare serves no metrics (it serves nothing) until it takes a worker's slot.
if (!spare) serveMetrics(gateway, Number(process.env.ISOGATE_WORKER));
send({ t: 'watch', files: gateway.watchedFiles() });
if (stopRequested) await stop(0);

if (spare) send({ t: 'spare', pid: process.pid });
serve();

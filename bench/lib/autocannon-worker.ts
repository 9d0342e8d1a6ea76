import { createRequire } from 'node:module';

/**
 * A long-lived autocannon process driven over IPC by bench/lib/loadgen.ts, so each
 * measurement does not pay a Node start. Messages in: { spec }. Out: { t: 'start' } when the
 * measured part begins (after the warm-up), { t: 'end', result } when it is done.
 */
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: Record<string, unknown>, cb: (err: Error | null, result: any) => void) => { stop(): void };

type Spec = { port: number; paths: string[]; connections: number; durationS: number; warmupS: number; threads: number; headers: Record<string, string> };

let current: { stop(): void } | null = null;

function once(spec: Spec, seconds: number): Promise<any> {
  const opts: Record<string, unknown> = {
    url: `http://127.0.0.1:${spec.port}${spec.paths.length === 1 ? spec.paths[0] : ''}`,
    connections: spec.connections,
    duration: seconds,
    headers: spec.headers,
    timeout: 10,
  };
  if (spec.paths.length > 1) opts.requests = spec.paths.map((path) => ({ method: 'GET', path }));
  if (spec.threads > 1) opts.workers = spec.threads;
  return new Promise((resolve, reject) => {
    current = autocannon(opts, (err, result) => {
      current = null;
      if (err !== null) reject(err);
      else resolve(result);
    });
  });
}

process.on('message', (msg: { spec?: Spec; stop?: boolean }) => {
  if (msg.stop === true) {
    current?.stop();
    return;
  }
  const spec = msg.spec!;
  void (async () => {
    try {
      if (spec.warmupS > 0) await once(spec, spec.warmupS);
      process.send!({ t: 'start' });
      const r = await once(spec, spec.durationS);
      const done = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
      process.send!({
        t: 'end',
        result: {
          requests: done,
          durationS: r.duration,
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          maxMs: r.latency.max,
          errors: r.errors + r.timeouts,
          non2xx: r.non2xx,
        },
      });
    } catch (err) {
      process.send!({ t: 'error', message: String((err as Error).stack ?? err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));

import { request } from 'undici';

/**
 * Before a header-plugin peer is measured: one request proves its n plugins ran, in access
 * and in the header filter, on the value sent (and no more than n did). A peer whose plugin
 * code silently did not run would otherwise measure as the cheapest plugin of all.
 */
export async function probeHeaderPlugins(port: number, path: string, n: number): Promise<void> {
  const value = `probe-${process.pid}-${Date.now()}`;
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers: { 'x-bench': value } });
  await r.body.dump();
  const wrong: string[] = [];
  if (r.statusCode !== 200) wrong.push(`status ${r.statusCode}`);
  for (let i = 1; i <= n + 1; i++) {
    for (const phase of ['access', 'filter']) {
      const got = r.headers[`x-bench-${i}-${phase}`];
      const want = i <= n ? value : undefined;
      if (got !== want) wrong.push(`x-bench-${i}-${phase}: ${got === undefined ? 'absent' : JSON.stringify(got)}`);
    }
  }
  if (wrong.length > 0) throw new Error(`probe ${path} (${n} plugins): ${wrong.join(', ')}`);
}

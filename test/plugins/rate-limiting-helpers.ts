import { send, type Reply } from '../helpers/gateway.ts';

/** Waits until at least `marginMs` are left in the current window of `seconds`, so a burst stays in one window. */
export async function inOneWindow(seconds: number, marginMs: number): Promise<void> {
  const ms = seconds * 1000;
  const left = ms - (Date.now() % ms);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 5));
}

/** `n` requests, `parallel` at a time, each on a new connection (so the kernel spreads them over the workers). */
export async function burst(urls: (i: number) => string, n: number, parallel: number): Promise<Reply[]> {
  const out: Reply[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out.push(await send(urls(i), { headers: { connection: 'close' } }));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

import type { IncomingMessage } from 'node:http';
import { OUTPUT_CAPS } from '../sandbox/limits.ts';

/**
 * The client's request body for a chain with a plugin that declares `reads: ['body']`
 * (Kong's client body buffer): buffered up to `OUTPUT_CAPS.maxRequestBodyBytes` before
 * rewrite/access. Chains without such a plugin never come here: their body streams.
 */
export type ClientBody = {
  /** The body as UTF-8 text for plugins; '' when there is none; null when it was over the cap. */
  readonly text: string | null;
  /** What goes upstream: the buffered bytes, the client's stream (replaying what was read), or null for no body. */
  readonly upstream: Buffer | AsyncIterable<Buffer> | IncomingMessage | null;
};

const EMPTY: ClientBody = { text: '', upstream: null };

/** The bytes already read, then the rest of the client's stream: an over-cap body goes upstream untouched. */
async function* replay(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  for (const c of head) yield c;
  for (;;) {
    const r = await rest.next();
    if (r.done === true) return;
    yield r.value;
  }
}

/**
 * Reads the client's body up to the cap. A Content-Length over the cap is not read at
 * all; a chunked body is read until it passes the cap, then streamed on.
 */
export async function readClientBody(req: IncomingMessage, hasBody: boolean, cap = OUTPUT_CAPS.maxRequestBodyBytes): Promise<ClientBody> {
  if (!hasBody) return EMPTY;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > cap) return { text: null, upstream: req };
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let n = 0;
  for (;;) {
    const r = await it.next();
    if (r.done === true) break;
    chunks.push(r.value);
    n += r.value.length;
    if (n > cap) return { text: null, upstream: replay(chunks, it) };
  }
  const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n);
  return { text: body.toString('utf8'), upstream: body };
}

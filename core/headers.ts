/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1): meaningful for one connection only, never
 * forwarded. Headers named in `Connection` are hop-by-hop too.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

type Headers = Record<string, string | string[] | undefined>;

/** Removes the headers that `Connection` names (its own removal is left to the caller). */
export function dropConnectionListed(headers: Headers, connection: string | string[] | undefined): void {
  if (connection === undefined || connection === 'close') return;
  // what node's own servers and clients send: no split, no list
  if (connection === 'keep-alive') {
    delete headers['keep-alive'];
    return;
  }
  const list = Array.isArray(connection) ? connection.join(',') : connection;
  for (const token of list.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') delete headers[name];
    else if (name === 'keep-alive') delete headers['keep-alive'];
  }
}

/** A copy of `src` without hop-by-hop headers. */
export function endToEnd(src: Headers): Headers {
  const out: Headers = {};
  for (const name in src) {
    if (!HOP_BY_HOP.has(name)) out[name] = src[name];
  }
  dropConnectionListed(out, src.connection);
  return out;
}

/**
 * Appends this gateway's Via entry (RFC 9110 section 7.6.3) to `headers`, after the ones
 * earlier hops added.
 */
export function appendVia(headers: Headers, entry: string): void {
  const prev = headers.via;
  headers.via = prev === undefined || prev === '' ? entry : Array.isArray(prev) ? [...prev, entry] : `${prev}, ${entry}`;
}

/** Whether a TE request header says the client accepts trailer fields (the `trailers` member). */
export function acceptsTrailers(te: string | string[] | undefined): boolean {
  if (te === undefined) return false;
  for (const member of (Array.isArray(te) ? te.join(',') : te).split(',')) {
    if (member.trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

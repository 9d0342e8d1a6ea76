import type { Pdk } from '../pdk-bridge/types.ts';

/**
 * Kong's `kong.response.error(status, message)`: ends the request with `message` in the
 * format the client's Accept asks for (JSON unless it names HTML, XML or plain text first),
 * as Kong's bundled plugins answer. Shared by the bundled plugins (bundled into each: it is
 * plain plugin code, not a PDK call).
 */
const JSON_TYPE = 'application/json; charset=utf-8';
const FORMATS: readonly (readonly [string, string, (m: string) => string])[] = [
  ['application/json', JSON_TYPE, (m) => JSON.stringify({ message: m })],
  ['text/html', 'text/html; charset=utf-8', (m) => `<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>${escape(m)}.</p>\n  </body>\n</html>\n`],
  ['application/xml', 'application/xml; charset=utf-8', (m) => `<?xml version="1.0" encoding="UTF-8"?>\n<error>\n  <message>${escape(m)}</message>\n</error>\n`],
  ['text/plain', 'text/plain; charset=utf-8', (m) => `${m}\n`],
];

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const SPECIAL = /[&<>"']/g;

function escape(text: string): string {
  return text.replace(SPECIAL, (c) => ENTITIES[c]);
}

/** The format the first known media range of `accept` names; JSON for none or `*\/*`. */
function formatFor(accept: string | string[] | undefined): (typeof FORMATS)[number] {
  if (typeof accept !== 'string' || accept === '') return FORMATS[0];
  // Only the first 16 ranges are looked at: a hostile Accept costs no more than that.
  const ranges = accept.split(',', 16);
  for (const r of ranges) {
    const semi = r.indexOf(';');
    const type = (semi < 0 ? r : r.slice(0, semi)).trim().toLowerCase();
    if (type === '*/*') return FORMATS[0];
    for (const f of FORMATS) if (f[0] === type) return f;
  }
  return FORMATS[0];
}

/** `headers`: more response headers (an auth plugin's WWW-Authenticate, rate-limiting's Retry-After); Content-Type is the format's. */
export function kongError(pdk: Pdk, status: number, message: string, headers?: Readonly<Record<string, string>>): never {
  const [, type, render] = formatFor(pdk.request.getHeader('accept'));
  return pdk.response.exit(status, render(message), headers === undefined ? { 'Content-Type': type } : { ...headers, 'Content-Type': type });
}

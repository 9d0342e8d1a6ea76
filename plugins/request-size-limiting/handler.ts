import type { Pdk } from '../../pdk-bridge/types.ts';
import { kongError } from '../kong-error.ts';

/**
 * Kong's request-size-limiting: refuses a request whose body is larger than
 * `allowed_payload_size` `size_unit`s, by its Content-Length, before the upstream is called
 * (413, or 417 when the client waits on `Expect: 100-continue`).
 *
 * A body without Content-Length (chunked) is counted as Kong does, by reading it: the
 * plugin exports `reads: ['body']`, so its routes buffer the client body (up to
 * proxy.bodies.maxRequestBodyBytes, 8 MB by default) before access. A body over that cap
 * comes as null: larger than anything the gateway buffers, it is refused (413) whatever
 * the limit, so a route that must take chunked bodies over 8 MB needs a larger cap. A
 * declared Content-Length is trusted as before (node:http ends the body there).
 */
type Config = { allowed_payload_size: number; size_unit: 'megabytes' | 'kilobytes' | 'bytes'; require_content_length: boolean };

export const name = 'request-size-limiting';
export const version = '1.0.0';
export const priority = 951; // Kong's
export const reads = ['body'];

const UNIT = { bytes: 1, kilobytes: 1024, megabytes: 1024 * 1024 } as const;
const TOO_LARGE = 'Request size limit exceeded';
const LENGTH_REQUIRED = 'A valid Content-Length header is required';
const DIGITS = /^\d+$/;

/**
 * The body's size in bytes, from its UTF-8 decoded text: each character by its UTF-8
 * length, U+FFFD (what an invalid byte decodes to) as one byte, so a binary body is never
 * counted larger than it came (a valid U+FFFD the client sent counts 2 bytes short).
 */
function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 || c === 0xfffd) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair: one 4-byte character
      i++;
    } else n += 3;
  }
  return n;
}

export function access(pdk: Pdk, config: Config): void {
  const cl = pdk.request.getHeader('content-length');
  // node:http refuses a malformed or repeated Content-Length with 400 before any plugin runs
  const length = typeof cl === 'string' && DIGITS.test(cl) ? Number(cl) : undefined;
  const limit = config.allowed_payload_size * UNIT[config.size_unit];
  if (length === undefined) {
    if (config.require_content_length) kongError(pdk, 411, LENGTH_REQUIRED);
    const body = pdk.request.getRawBody(); // null: over the gateway's body buffer cap
    if (body === null || (body.length * 3 > limit && utf8Bytes(body) > limit)) kongError(pdk, 413, TOO_LARGE);
    return;
  }
  if (length > limit) {
    const expect = pdk.request.getHeader('expect');
    kongError(pdk, typeof expect === 'string' && expect.trim().toLowerCase() === '100-continue' ? 417 : 413, TOO_LARGE);
  }
}

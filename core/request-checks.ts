import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, errorBody, type ErrorCode } from './errors.ts';

/**
 * What node:http lets through but HTTP forbids, checked before routing, and the answers to
 * what its parser (llhttp) refuses. Every refusal is a JSON error of core/errors.ts and
 * closes the connection: after a request that breaks the framing rules, the next bytes on
 * it cannot be trusted (request smuggling lives there).
 */

/** Bodies encoded once. */
const BODIES = new Map<ErrorCode, Buffer>((Object.keys(ERRORS) as ErrorCode[]).map((code) => [code, Buffer.from(errorBody(code))]));

function refuse(res: ServerResponse, code: ErrorCode): true {
  const body = BODIES.get(code)!;
  res.writeHead(ERRORS[code].status, { 'content-type': 'application/json', 'content-length': String(body.length), connection: 'close' });
  res.end(body);
  return true;
}

/**
 * Answers a request HTTP does not allow and returns true; false for a request to serve.
 * Refused: a request line without an HTTP version (HTTP/0.9, which node:http hands on as
 * version 0.9) or with a major version other than 1; an HTTP/1.1 request without Host;
 * two Host lines, or a Host that disagrees with an absolute-form target (RFC 9112 3.2).
 * The gateway's server runs with `requireHostHeader: false` so that the missing Host gets
 * this JSON answer, not node's empty 400.
 *
 * Cost: node keeps one Host in req.headers and drops the rest, so duplicates are only
 * visible in req.rawHeaders (already built by the parser); the scan compares name lengths
 * first, a few integer comparisons per header.
 */
export function refuseBadRequest(req: IncomingMessage, res: ServerResponse): boolean {
  const code = badRequestCode(req);
  return code === null ? false : refuse(res, code);
}

/** What refuseBadRequest checks, as the error to answer or null (WebSocket handshakes answer on the raw socket). */
export function badRequestCode(req: IncomingMessage): ErrorCode | null {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? 'ISG_ERR_NO_HTTP_VERSION' : 'ISG_ERR_HTTP_VERSION';
  const raw = req.rawHeaders;
  let hosts = 0;
  let host = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) {
      hosts++;
      host = raw[i + 1];
    }
  }
  if (hosts > 1) return 'ISG_ERR_DUPLICATE_HOST';
  if (hosts === 0) return req.httpVersionMinor >= 1 ? 'ISG_ERR_MISSING_HOST' : null;
  const url = req.url!;
  if (url.charCodeAt(0) === 47 /* / */) return null;
  const authority = absoluteAuthority(url);
  if (authority !== null && authority.toLowerCase() !== host.toLowerCase()) return 'ISG_ERR_HOST_MISMATCH';
  return null;
}

/** `http://a.example:8080/x?y` -> `a.example:8080`; null for a target that is not an absolute http(s) URI. */
function absoluteAuthority(url: string): string | null {
  const sep = url.indexOf('://');
  if (sep < 0) return null;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  let end = url.length;
  for (let i = sep + 3; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  return url.slice(sep + 3, end);
}

/** llhttp's error codes, grouped into what a client can act on; anything else is a malformed request. */
const PARSER_ERRORS = new Map<string, ErrorCode>(Object.entries({
  HPE_HEADER_OVERFLOW: 'ISG_ERR_HEADERS_TOO_LARGE',
  HPE_INVALID_HEADER_TOKEN: 'ISG_ERR_BAD_HEADER',
  HPE_UNEXPECTED_SPACE: 'ISG_ERR_BAD_HEADER',
  HPE_INVALID_CONTENT_LENGTH: 'ISG_ERR_BAD_FRAMING',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'ISG_ERR_BAD_FRAMING',
  HPE_INVALID_TRANSFER_ENCODING: 'ISG_ERR_BAD_FRAMING',
  HPE_INVALID_CHUNK_SIZE: 'ISG_ERR_BAD_FRAMING',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'ISG_ERR_BAD_FRAMING',
  // node's headersTimeout (60 s by default) ran out before the headers were complete.
  ERR_HTTP_REQUEST_TIMEOUT: 'ISG_ERR_REQUEST_TIMEOUT',
} satisfies Record<string, ErrorCode>));

/** Whole responses for the parser's errors, written straight to the socket (there is no ServerResponse yet). */
const RAW_RESPONSES = new Map<ErrorCode, string>(
  [...new Set<ErrorCode>([...PARSER_ERRORS.values(), 'ISG_ERR_BAD_REQUEST'])].map((code) => {
    const body = errorBody(code);
    const status = ERRORS[code].status;
    return [code, `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`];
  }),
);

/** The error code the gateway answers a parser error with. */
export function parserErrorCode(code: string | undefined): ErrorCode {
  return (code !== undefined ? PARSER_ERRORS.get(code) : undefined) ?? 'ISG_ERR_BAD_REQUEST';
}

/**
 * node:http's `clientError`: the request could not be parsed, so it never reached the
 * handler. Answers with the JSON error unless the socket is gone or a response on it has
 * already begun (as node's own handler does), then closes the connection.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inProgress = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || inProgress) {
    socket.destroy();
    return;
  }
  socket.end(RAW_RESPONSES.get(parserErrorCode(err.code)));
}

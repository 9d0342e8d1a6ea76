// In-isolate runtime: pdk.response, the response sent to the client.
// Arguments come from plugin code: typed `any`, each checked here before use.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import type { PdkResponse } from '../types.ts';
import { $apply, $create, $freeze, $keys, $slice, $toLower, ACCESS, BODY_FILTER, REWRITE, RESPONSE, bodyIn, bodyLast, bounded, checkPhase, emit, emitHeader, header, headerOut, list, own, phaseSnapshot, realm, request, responseHeaders, setBody, setExited, str, tooLarge, type Satisfies } from './prelude.ts';
import { encodeBody } from './bodies.ts';
import { setHeaders } from './service-request.ts';

export const HEADERS_WRITABLE = PHASES.masks.HEADERS_WRITABLE;
export const HAS_RESPONSE = PHASES.masks.HAS_RESPONSE;
const STATUS_WRITABLE = PHASES.masks.STATUS_WRITABLE;

/** Thrown by exit() to stop the running handler; the dispatcher recognises it. */
export const EXIT = $freeze($create(null));

export const pdkResponse = $freeze({
  /**
   * Ends the request here: the upstream is not called and later plugins of the chain are
   * skipped. `body` is a string or a plain object (sent as JSON).
   */
  exit(status: any, body: any, headers: any) {
    checkPhase('response.exit', REWRITE | ACCESS);
    // 1xx are not final responses: sent as one, the client would take the next response
    // on its connection as this one's.
    if (typeof status !== 'number' || status < 200 || status > 599 || (status | 0) !== status) {
      throw new realm.TypeError('response.exit status must be an integer from 200 to 599');
    }
    // Every cap is checked before anything is encoded: a body over the cap is refused by
    // its length (a string) or while it is being encoded (an object), never copied whole.
    let text: string | null = null;
    let json = false;
    if (body !== undefined && body !== null) {
      if (typeof body === 'string') text = body;
      else {
        text = bounded(body, CAPS.maxBodyBytes);
        if (text === null) tooLarge(`response.exit body encodes to more than ${CAPS.maxBodyBytes} characters`);
        json = true;
      }
      if (typeof text !== 'string') throw new realm.TypeError('response.exit body must be a string or JSON data');
      if (text.length > CAPS.maxBodyBytes) tooLarge(`response.exit body of ${text.length} characters exceeds ${CAPS.maxBodyBytes}`);
    }
    const hs = list<string>();
    let chars = text === null ? 0 : text.length;
    if (headers !== undefined && headers !== null) {
      const names = $keys(headers);
      if (names.length > CAPS.maxExitHeaders) tooLarge(`response.exit with ${names.length} headers, more than ${CAPS.maxExitHeaders}`);
      for (let i = 0; i < names.length; i++) {
        const k = names[i];
        const v = header(k, headers[k], 'response.exit');
        hs[hs.length] = k;
        hs[hs.length] = v;
        chars += k.length + v.length;
      }
    }
    emit(['exit', status, text, hs, json], chars);
    setExited();
    throw EXIT;
  },
  setHeader(name: any, value: any) {
    emitHeader('rs.set', 'response.setHeader', HEADERS_WRITABLE, name, value);
  },
  addHeader(name: any, value: any) {
    emitHeader('rs.add', 'response.addHeader', HEADERS_WRITABLE, name, value);
  },
  clearHeader(name: any) {
    checkPhase('response.clearHeader', HEADERS_WRITABLE);
    emit(['rs.clear', str(name, 'header name')], name.length);
  },
  getStatus() { checkPhase('response.getStatus', HAS_RESPONSE); return phaseSnapshot().s; },
  getHeader(name: any) {
    checkPhase('response.getHeader', HAS_RESPONSE);
    return headerOut(own(phaseSnapshot().h, $apply($toLower, str(name, 'header name'), [])));
  },
  getHeaders() { checkPhase('response.getHeaders', HAS_RESPONSE); return responseHeaders(); },
  /** Kong's set_status, once the upstream answered (response, headerFilter): the status sent to the client instead of the upstream's, 200 to 599. */
  setStatus(status: any) {
    checkPhase('response.setStatus', STATUS_WRITABLE);
    if (typeof status !== 'number' || status < 200 || status > 599 || (status | 0) !== status) {
      throw new realm.TypeError('response.setStatus status must be an integer from 200 to 599');
    }
    emit(['rs.status', status], 0);
  },
  /** response phase: the whole response body as text (the upstream's, or what a plugin before set). */
  // bodyIn is null only in rewrite/access (a client body over its cap), never here
  getRawBody() { checkPhase('response.getRawBody', RESPONSE); return bodyIn as string; },
  /** response phase: replaces the whole body sent to the client (the host sets Content-Length). */
  setRawBody(body: any) {
    checkPhase('response.setRawBody', RESPONSE);
    const text = str(body, 'body');
    if (text.length > CAPS.maxBodyBytes) tooLarge(`response.setRawBody body of ${text.length} characters exceeds ${CAPS.maxBodyBytes}`);
    emit(['rs.body', text.length], 0); // the text itself follows the result, unescaped, under its own cap
    setBody(text);
  },
  /** bodyFilter: this chunk of the body as text (cut at character boundaries), as the plugins before left it. */
  getChunk() { checkPhase('response.getChunk', BODY_FILTER); return bodyIn as string; },
  /** bodyFilter: replaces this chunk ('' drops it), at most CAPS.maxChunkBytes characters. */
  setChunk(chunk: any) {
    checkPhase('response.setChunk', BODY_FILTER);
    const text = str(chunk, 'chunk');
    if (text.length > CAPS.maxChunkBytes) tooLarge(`response.setChunk chunk of ${text.length} characters exceeds ${CAPS.maxChunkBytes}`);
    emit(['rs.chunk', text.length], 0);
    setBody(text);
  },
  /** bodyFilter: true in the call for the end of the body (its chunk may be ''). Kong's ngx.arg[2]. */
  isLastChunk() { checkPhase('response.isLastChunk', BODY_FILTER); return bodyLast; },
});

/** Kong's default message of kong.response.error per status (kong/tools/http.lua). */
const ERROR_MESSAGES: Readonly<Record<number, string>> = $freeze({
  400: 'Bad request', 401: 'Unauthorized', 402: 'Payment required', 403: 'Forbidden', 404: 'Not found',
  405: 'Method not allowed', 406: 'Not acceptable', 407: 'Proxy authentication required', 408: 'Request timeout',
  409: 'Conflict', 410: 'Gone', 411: 'Length required', 412: 'Precondition failed', 413: 'Payload too large',
  414: 'URI too long', 415: 'Unsupported media type', 416: 'Range not satisfiable', 417: 'Expectation failed',
  418: "I'm a teapot", 421: 'Misdirected request', 422: 'Unprocessable entity', 423: 'Locked', 424: 'Failed dependency',
  425: 'Too early', 426: 'Upgrade required', 428: 'Precondition required', 429: 'Too many requests',
  431: 'Request header fields too large', 451: 'Unavailable for legal reasons', 494: 'Request header or cookie too large',
  500: 'An unexpected error occurred', 501: 'Not implemented', 502: 'An invalid response was received from the upstream server',
  503: 'The upstream server is currently unavailable', 504: 'The upstream server is timing out', 505: 'HTTP version not supported',
  506: 'Variant also negotiates', 507: 'Insufficient storage', 508: 'Loop detected', 510: 'Not extended', 511: 'Network authentication required',
});


// Kong's other response functions (merged into pdk.response in pdk.ts).
export const pdkResponseMore = {
  /**
   * Where the response comes from: 'exit' (a plugin's exit or error), 'service' (the
   * upstream answered), 'error' (the gateway answered with an error of its own).
   */
  getSource() {
    checkPhase('response.getSource', HAS_RESPONSE);
    const src = phaseSnapshot().src;
    return src === undefined ? 'service' : src;
  },
  /**
   * Kong's kong.response.error: exit() with status 400-599 and a JSON body
   * `{"message": ...}`, Kong's default message for the status when none is given (an
   * object `message` is sent as the body itself).
   */
  error(status: any, message: any, headers: any): never {
    checkPhase('response.error', REWRITE | ACCESS);
    if (typeof status !== 'number' || status < 400 || status > 599 || (status | 0) !== status) {
      throw new realm.TypeError('response.error status must be an integer from 400 to 599');
    }
    let body: unknown;
    if (message === undefined || message === null) {
      const m = ERROR_MESSAGES[status];
      body = { message: m === undefined ? 'The upstream server responded with ' + status : m };
    } else if (typeof message === 'string') body = { message };
    else if (typeof message === 'object') body = message;
    else throw new realm.TypeError('response.error message must be a string or JSON data');
    const hs: Record<string, unknown> = $create(null);
    let typed = false;
    if (headers !== undefined && headers !== null) {
      const names = $keys(headers);
      if (names.length > CAPS.maxExitHeaders) tooLarge(`response.error with ${names.length} headers, more than ${CAPS.maxExitHeaders}`);
      for (let i = 0; i < names.length; i++) {
        const k = str(names[i], 'header name');
        hs[k] = headers[k];
        if ($apply($toLower, k, []) === 'content-type') typed = true;
      }
    }
    if (!typed) hs['content-type'] = 'application/json; charset=utf-8';
    return pdkResponse.exit(status, body, hs);
  },
  setHeaders(headers: any) {
    checkPhase('response.setHeaders', HEADERS_WRITABLE);
    setHeaders('response.setHeaders', headers, 'rs.set', 'rs.add');
  },
};

/** Compile time: both halves together are types.ts's PdkResponse. */
export type ResponseChecked = Satisfies<typeof pdkResponse & typeof pdkResponseMore, PdkResponse>;

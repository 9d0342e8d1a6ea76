// In-isolate runtime: pdk.serviceRequest, changes to the request sent upstream.
// Arguments come from plugin code: typed `any`, each checked here before use.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import type { PdkServiceRequest } from '../types.ts';
import { $apply, $encode, $freeze, $isArray, $keys, $slice, checkPhase, emit, emitHeader, header, realm, request, setBodyOut, str, tooLarge, type Satisfies } from './prelude.ts';
import { encodeBody } from './bodies.ts';

export const BEFORE_UPSTREAM = PHASES.masks.BEFORE_UPSTREAM;

export const pdkServiceRequest = $freeze({
  setHeader(name: any, value: any) {
    emitHeader('sq.set', 'serviceRequest.setHeader', BEFORE_UPSTREAM, name, value);
  },
  addHeader(name: any, value: any) {
    emitHeader('sq.add', 'serviceRequest.addHeader', BEFORE_UPSTREAM, name, value);
  },
  clearHeader(name: any) {
    checkPhase('serviceRequest.clearHeader', BEFORE_UPSTREAM);
    emit(['sq.clear', str(name, 'header name')], name.length);
  },
  /** Replaces the path (without query) sent upstream; it must start with "/". */
  setPath(path: any) {
    checkPhase('serviceRequest.setPath', BEFORE_UPSTREAM);
    emit(['sq.path', str(path, 'path')], path.length);
  },
  /** Replaces the raw query string (without "?") sent upstream. */
  setRawQuery(query: any) {
    checkPhase('serviceRequest.setRawQuery', BEFORE_UPSTREAM);
    emit(['sq.query', str(query, 'query')], query.length);
  },
  /**
   * Kong's enable_buffering: the upstream's whole response is buffered for this request (as
   * for a response phase, <= CAPS.maxBodyBytes), so headerFilter can read it with
   * serviceResponse.getRawBody/getBody.
   */
  enableBuffering() {
    checkPhase('serviceRequest.enableBuffering', BEFORE_UPSTREAM);
    emit(['sq.buffer'], 0);
  },
  /**
   * Replaces the body sent upstream (text, sent as UTF-8; the host sets Content-Length),
   * at most CAPS.maxRequestBodyBytes characters. Works whether or not the client's body was
   * buffered: the client's body is then not sent.
   */
  setRawBody(body: any) {
    checkPhase('serviceRequest.setRawBody', BEFORE_UPSTREAM);
    const text = str(body, 'body');
    if (text.length > CAPS.maxRequestBodyBytes) tooLarge(`serviceRequest.setRawBody body of ${text.length} characters exceeds ${CAPS.maxRequestBodyBytes}`);
    emit(['sq.body', text.length], 0); // the text follows the result, unescaped, under its own cap
    setBodyOut(text);
  },
  /**
   * Encodes `body` by `mimeType` (else the request's Content-Type, else JSON) and sends it
   * upstream: JSON, form or multipart (with the boundary of the type). A given type also
   * becomes the upstream Content-Type.
   */
  setBody(body: any, mimeType: any) {
    checkPhase('serviceRequest.setBody', BEFORE_UPSTREAM);
    const given = request().h['content-type'];
    let ct = given;
    if (mimeType !== undefined && mimeType !== null) ct = header('content-type', mimeType, 'serviceRequest.setBody');
    else if (ct === undefined) ct = 'application/json';
    const text = encodeBody(body, ct, CAPS.maxRequestBodyBytes, 'serviceRequest.setBody');
    if (ct !== given) emit(['sq.set', 'content-type', ct], ct.length + 12);
    emit(['sq.body', text.length], 0);
    setBodyOut(text);
  },
});

/**
 * Kong's set_headers, for the request or the response: each header of `headers` replaces
 * the one of that name; an array value sends the header once per element.
 */
export function setHeaders(fn: string, headers: any, setOp: string, addOp: string): void {
  if (headers === null || typeof headers !== 'object' || $isArray(headers)) throw new realm.TypeError(`${fn}: headers must be an object of name -> value`);
  const names = $keys(headers);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const v = headers[name];
    if ($isArray(v)) {
      for (let k = 0; k < v.length; k++) {
        const one = header(name, v[k], fn);
        emit([k === 0 ? setOp : addOp, name, one], name.length + one.length);
      }
    } else {
      const one = header(name, v, fn);
      emit([setOp, name, one], name.length + one.length);
    }
  }
}

/** Kong's set_query: a table encoded as a query string; an array repeats the argument, `true` sends the bare name. */
function encodeQuery(args: any): string {
  if (args === null || typeof args !== 'object' || $isArray(args)) throw new realm.TypeError('serviceRequest.setQuery: args must be an object of name -> value');
  const names = $keys(args);
  let out = '';
  const one = function (k: string, v: unknown) {
    let part: string;
    if (v === true) part = $encode(k);
    else if (v === false) return;
    else if (typeof v === 'string' || typeof v === 'number') part = $encode(k) + '=' + $encode('' + v);
    else throw new realm.TypeError(`serviceRequest.setQuery: argument ${$apply($slice, k, [0, 64])} must be a string, number, boolean or an array of them`);
    out += (out === '' ? '' : '&') + part;
    if (out.length > 8192) tooLarge('serviceRequest.setQuery: query longer than 8192 characters');
  };
  for (let i = 0; i < names.length; i++) {
    const k = names[i];
    const v = args[k];
    if ($isArray(v)) for (let j = 0; j < v.length; j++) one(k, v[j]);
    else one(k, v);
  }
  return out;
}

// Kong's methods for set_method, less CONNECT (mirrored by pdk-bridge/host/ops.ts SERVICE_METHODS).
const SERVICE_METHODS: Readonly<Record<string, number>> = $freeze({ GET: 1, HEAD: 1, PUT: 1, POST: 1, DELETE: 1, OPTIONS: 1, MKCOL: 1, COPY: 1, MOVE: 1, PROPFIND: 1, PROPPATCH: 1, LOCK: 1, UNLOCK: 1, PATCH: 1, TRACE: 1 });

// Kong's other service request setters (merged into pdk.serviceRequest in pdk.ts; the
// type below checks the two together against types.ts).
export const pdkServiceRequestMore = {
  setHeaders(headers: any) {
    checkPhase('serviceRequest.setHeaders', BEFORE_UPSTREAM);
    setHeaders('serviceRequest.setHeaders', headers, 'sq.set', 'sq.add');
  },
  /** 'http' or 'https': the scheme used to reach the service (same host and port). */
  setScheme(scheme: any) {
    checkPhase('serviceRequest.setScheme', BEFORE_UPSTREAM);
    if (scheme !== 'http' && scheme !== 'https') throw new realm.TypeError('serviceRequest.setScheme: scheme must be "http" or "https"');
    emit(['sq.scheme', scheme], 5);
  },
  /** Kong's methods (upper case), less CONNECT. */
  setMethod(method: any) {
    checkPhase('serviceRequest.setMethod', BEFORE_UPSTREAM);
    const m = str(method, 'method');
    if (SERVICE_METHODS[m] !== 1) throw new realm.TypeError('serviceRequest.setMethod: method must be one of ' + $keys(SERVICE_METHODS).join(', '));
    emit(['sq.method', m], m.length);
  },
  setQuery(args: any) {
    checkPhase('serviceRequest.setQuery', BEFORE_UPSTREAM);
    const q = encodeQuery(args);
    emit(['sq.query', q], q.length);
  },
  /** Removes every occurrence of the argument from the query sent upstream (as it is when the host applies this). */
  clearQueryArg(name: any) {
    checkPhase('serviceRequest.clearQueryArg', BEFORE_UPSTREAM);
    const n = str(name, 'query argument name');
    if (n.length > 8192) tooLarge('serviceRequest.clearQueryArg: name longer than 8192 characters');
    emit(['sq.clearArg', n], n.length);
  },
};

/** Compile time: both halves together are types.ts's PdkServiceRequest. */
export type ServiceRequestChecked = Satisfies<typeof pdkServiceRequest & typeof pdkServiceRequestMore, PdkServiceRequest>;

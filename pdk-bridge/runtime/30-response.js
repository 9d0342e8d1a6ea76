// In-isolate runtime: pdk.response, the response sent to the client.
const HEADERS_WRITABLE = REWRITE | ACCESS | HEADER_FILTER;
const HAS_RESPONSE = HEADER_FILTER | BODY_FILTER | LOG;

/** Thrown by exit() to stop the running handler; the dispatcher recognises it. */
const EXIT = $freeze({ isogateExit: true });

const pdkResponse = $freeze({
  /**
   * Ends the request here: the upstream is not called and later plugins of the chain are
   * skipped. `body` is a string or a plain object (sent as JSON).
   */
  exit(status, body, headers) {
    checkPhase('response.exit', REWRITE | ACCESS);
    // 1xx are not final responses: sent as one, the client would take the next response
    // on its connection as this one's.
    if (typeof status !== 'number' || status < 200 || status > 599 || (status | 0) !== status) {
      throw new $TypeError('response.exit status must be an integer from 200 to 599');
    }
    let text = null;
    let json = false;
    if (body !== undefined && body !== null) {
      if (typeof body === 'string') text = body;
      else { text = $stringify(body); json = true; }
    }
    const hs = list();
    if (headers !== undefined && headers !== null) {
      const names = $keys(headers);
      for (let i = 0; i < names.length; i++) {
        const k = names[i];
        hs[hs.length] = str(k, 'header name');
        hs[hs.length] = headerValue(headers[k], 'header value');
      }
    }
    emit(['exit', status, text, hs, json]);
    exited = true;
    throw EXIT;
  },
  setHeader(name, value) {
    checkPhase('response.setHeader', HEADERS_WRITABLE);
    emit(['rs.set', str(name, 'header name'), headerValue(value, 'header value')]);
  },
  addHeader(name, value) {
    checkPhase('response.addHeader', HEADERS_WRITABLE);
    emit(['rs.add', str(name, 'header name'), headerValue(value, 'header value')]);
  },
  clearHeader(name) {
    checkPhase('response.clearHeader', HEADERS_WRITABLE);
    emit(['rs.clear', str(name, 'header name')]);
  },
  getStatus() { checkPhase('response.getStatus', HAS_RESPONSE); return phaseSnapshot().s; },
  getHeader(name) {
    checkPhase('response.getHeader', HAS_RESPONSE);
    const h = phaseSnapshot().h;
    return h === undefined ? undefined : h[$apply($toLower, str(name, 'header name'), [])];
  },
  getHeaders() { checkPhase('response.getHeaders', HAS_RESPONSE); return phaseSnapshot().h; },
  /** bodyFilter only: the whole upstream body as text. */
  getBody() { checkPhase('response.getBody', BODY_FILTER); return bodyIn; },
  /** bodyFilter only: replaces the body sent to the client. */
  setBody(body) {
    checkPhase('response.setBody', BODY_FILTER);
    bodyOut = str(body, 'body');
    emit(['rs.body', bodyOut.length]); // the text itself follows the result, unescaped
  },
});

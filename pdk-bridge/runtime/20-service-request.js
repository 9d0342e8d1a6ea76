// In-isolate runtime: pdk.serviceRequest, changes to the request sent upstream.
const BEFORE_UPSTREAM = PHASES.masks.BEFORE_UPSTREAM;

const pdkServiceRequest = $freeze({
  setHeader(name, value) {
    checkPhase('serviceRequest.setHeader', BEFORE_UPSTREAM);
    const v = header(name, value, 'serviceRequest.setHeader');
    emit(['sq.set', name, v], name.length + v.length);
  },
  addHeader(name, value) {
    checkPhase('serviceRequest.addHeader', BEFORE_UPSTREAM);
    const v = header(name, value, 'serviceRequest.addHeader');
    emit(['sq.add', name, v], name.length + v.length);
  },
  clearHeader(name) {
    checkPhase('serviceRequest.clearHeader', BEFORE_UPSTREAM);
    emit(['sq.clear', str(name, 'header name')], name.length);
  },
  /** Replaces the path (without query) sent upstream; it must start with "/". */
  setPath(path) {
    checkPhase('serviceRequest.setPath', BEFORE_UPSTREAM);
    emit(['sq.path', str(path, 'path')], path.length);
  },
  /** Replaces the raw query string (without "?") sent upstream. */
  setRawQuery(query) {
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
  setRawBody(body) {
    checkPhase('serviceRequest.setRawBody', BEFORE_UPSTREAM);
    const text = str(body, 'body');
    if (text.length > CAPS.maxRequestBodyBytes) tooLarge(`serviceRequest.setRawBody body of ${text.length} characters exceeds ${CAPS.maxRequestBodyBytes}`);
    emit(['sq.body', text.length], 0); // the text follows the result, unescaped, under its own cap
    bodyOut = text;
  },
  /**
   * Encodes `body` by `mimeType` (else the request's Content-Type, else JSON) and sends it
   * upstream: JSON, form or multipart (with the boundary of the type). A given type also
   * becomes the upstream Content-Type.
   */
  setBody(body, mimeType) {
    checkPhase('serviceRequest.setBody', BEFORE_UPSTREAM);
    const given = request().h['content-type'];
    let ct = given;
    if (mimeType !== undefined && mimeType !== null) ct = header('content-type', mimeType, 'serviceRequest.setBody');
    else if (ct === undefined) ct = 'application/json';
    const text = encodeBody(body, ct, CAPS.maxRequestBodyBytes, 'serviceRequest.setBody');
    if (ct !== given) emit(['sq.set', 'content-type', ct], ct.length + 12);
    emit(['sq.body', text.length], 0);
    bodyOut = text;
  },
});

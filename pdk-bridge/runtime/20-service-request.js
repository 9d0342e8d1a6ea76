// In-isolate runtime: pdk.serviceRequest, changes to the request sent upstream.
const BEFORE_UPSTREAM = REWRITE | ACCESS;

const pdkServiceRequest = $freeze({
  setHeader(name, value) {
    checkPhase('serviceRequest.setHeader', BEFORE_UPSTREAM);
    emit(['sq.set', str(name, 'header name'), headerValue(value, 'header value')]);
  },
  addHeader(name, value) {
    checkPhase('serviceRequest.addHeader', BEFORE_UPSTREAM);
    emit(['sq.add', str(name, 'header name'), headerValue(value, 'header value')]);
  },
  clearHeader(name) {
    checkPhase('serviceRequest.clearHeader', BEFORE_UPSTREAM);
    emit(['sq.clear', str(name, 'header name')]);
  },
  /** Replaces the path (without query) sent upstream; it must start with "/". */
  setPath(path) {
    checkPhase('serviceRequest.setPath', BEFORE_UPSTREAM);
    emit(['sq.path', str(path, 'path')]);
  },
  /** Replaces the raw query string (without "?") sent upstream. */
  setRawQuery(query) {
    checkPhase('serviceRequest.setRawQuery', BEFORE_UPSTREAM);
    emit(['sq.query', str(query, 'query')]);
  },
});

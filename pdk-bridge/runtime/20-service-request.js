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
});

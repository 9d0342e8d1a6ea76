// In-isolate runtime: pdk.request, reads of the client's request (a snapshot copied in).

const PLUS = /\+/g;

function parseQuery(raw) {
  const out = $create(null);
  if (raw === '') return out;
  const parts = $apply($split, raw, ['&']);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '') continue;
    const eq = $apply($indexOf, part, ['=']);
    let k = eq < 0 ? part : $apply($slice, part, [0, eq]);
    let v = eq < 0 ? '' : $apply($slice, part, [eq + 1]);
    try { k = $decode($apply($replace, k, [PLUS, ' '])); v = $decode($apply($replace, v, [PLUS, ' '])); } catch { /* keep raw */ }
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if ($isArray(prev)) prev[prev.length] = v;
    else { const both = list(); both[0] = prev; both[1] = v; out[k] = both; }
  }
  return out;
}

const pdkRequest = $freeze({
  getMethod() { checkPhase('request.getMethod', ANY_PHASE); return request().m; },
  getPath() { checkPhase('request.getPath', ANY_PHASE); return request().p; },
  getRawQuery() { checkPhase('request.getRawQuery', ANY_PHASE); return request().q; },
  getQuery() {
    checkPhase('request.getQuery', ANY_PHASE);
    const r = request();
    if (r.qp === undefined) r.qp = parseQuery(r.q);
    return r.qp;
  },
  getQueryArg(name) {
    checkPhase('request.getQueryArg', ANY_PHASE);
    return pdkRequest.getQuery()[str(name, 'query argument name')];
  },
  getHost() { checkPhase('request.getHost', ANY_PHASE); return request().h.host; },
  /** Header names are case-insensitive; a repeated header comes joined with ", ". */
  getHeader(name) {
    checkPhase('request.getHeader', ANY_PHASE);
    return request().h[$apply($toLower, str(name, 'header name'), [])];
  },
  getHeaders() { checkPhase('request.getHeaders', ANY_PHASE); return request().h; },
  getClientIp() { checkPhase('request.getClientIp', ANY_PHASE); return request().ip; },
  getScheme() { checkPhase('request.getScheme', ANY_PHASE); return request().s; },
  /**
   * The client's body as text (UTF-8), for a plugin that exports `reads: ['body']`; '' when
   * there is none; null when it was larger than CAPS.maxRequestBodyBytes (it then went
   * upstream untouched, streamed).
   */
  getRawBody() {
    checkPhase('request.getRawBody', BEFORE_UPSTREAM);
    readsBody('request.getRawBody');
    return bodyIn;
  },
  /** The body parsed by `mimeType` or the request's Content-Type: JSON, form or multipart; null as getRawBody. */
  getBody(mimeType) {
    checkPhase('request.getBody', BEFORE_UPSTREAM);
    readsBody('request.getBody');
    if (bodyIn === null) return null;
    return parseBody(bodyIn, request().h['content-type'], mimeType, 'request.getBody');
  },
});

/** The body is buffered only for chains with a plugin that declared it reads it; a plugin that did not may not read it. */
function readsBody(fn) {
  if (!instances[instance].readsBody) throw new realm.Error(`${fn} needs the plugin to export reads: ['body']`);
}

// In-isolate runtime: pdk.serviceResponse, the upstream's own response (Kong's
// kong.service.response). Status and headers in every phase that has a response: the
// upstream's, before any plugin changed them (`ss`/`sh` of the phase snapshot when a
// response phase ran, else `s`/`h`). The body where it was buffered.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import type { PdkServiceResponse } from '../types.ts';
import { $apply, $freeze, $toLower, bodyFrom, checkPhase, headerOut, headersOut, mine, own, phaseSnapshot, responseHeaders, str } from './prelude.ts';
import { parseBody } from './bodies.ts';

const HAS_SERVICE_RESPONSE = PHASES.masks.HAS_SERVICE_RESPONSE;
const HAS_SERVICE_BODY = PHASES.masks.HAS_SERVICE_BODY;

/** The upstream's headers in the phase snapshot (runtime realm: read with own(), copied out). */
function serviceHeaders(): Record<string, string | string[]> | undefined {
  const d = phaseSnapshot();
  return d.sh !== undefined ? d.sh : d.h;
}

export const pdkServiceResponse = $freeze({
  getStatus() {
    checkPhase('serviceResponse.getStatus', HAS_SERVICE_RESPONSE);
    const d = phaseSnapshot();
    return d.ss !== undefined ? d.ss : d.s;
  },
  getHeader(name: unknown) {
    checkPhase('serviceResponse.getHeader', HAS_SERVICE_RESPONSE);
    return headerOut(own(serviceHeaders(), $apply($toLower, str(name, 'header name'), [])));
  },
  // the phase snapshot of every phase that has a service response carries headers
  getHeaders() {
    checkPhase('serviceResponse.getHeaders', HAS_SERVICE_RESPONSE);
    const sh = phaseSnapshot().sh;
    if (sh === undefined) return responseHeaders();
    const rm = mine();
    if (rm.svcHeaders === null) rm.svcHeaders = headersOut(sh);
    return rm.svcHeaders;
  },
  /**
   * The upstream's body as text (UTF-8), as it came, whatever plugins set since: in
   * response, and in headerFilter when the response was buffered (a response phase in the
   * chain, or serviceRequest.enableBuffering()); else null.
   */
  getRawBody() { checkPhase('serviceResponse.getRawBody', HAS_SERVICE_BODY); return bodyFrom; },
  /** The upstream's body parsed by `mimeType` or its Content-Type (JSON, form, multipart); null as getRawBody. */
  getBody(mimeType?: unknown) {
    checkPhase('serviceResponse.getBody', HAS_SERVICE_BODY);
    if (bodyFrom === null) return null;
    const h = serviceHeaders();
    return parseBody(bodyFrom, h === undefined ? undefined : h['content-type'], mimeType, 'serviceResponse.getBody');
  },
} satisfies PdkServiceResponse);

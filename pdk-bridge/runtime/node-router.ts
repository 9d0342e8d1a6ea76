// In-isolate runtime: pdk.node (this gateway) and pdk.router (the route that matched).
// NODE is defined by the build (sandbox/runtime-build.ts, an esbuild define): the gateway's id,
// hostname and version, the same for every call. The route and its service come after
// the request snapshot (core/proxy.ts requestJson) and are parsed only when asked for.
import type { PdkNode, PdkRouter } from '../types.ts';
import { RUNTIME_PHASES } from '../phases.ts';
import { $apply, $freeze, $indexOf, $keys, $slice, ANY_PHASE, callSeq, checkPhase, realm, reqRaw, type Snapshot } from './prelude.ts';

/** pdk.node needs no request: it works in configure too. */
const WITHOUT_REQUEST = RUNTIME_PHASES.masks.WITHOUT_REQUEST;


/** The route part of the request snapshot, parsed in the calling plugin's realm (once per call and realm). */
export function routeInfo(): Snapshot {
  const rm = realm;
  if (rm.routeSeq !== callSeq) {
    const nl = $apply($indexOf, reqRaw, ['\n']);
    const info = nl < 0 ? rm.parse('{"route":null,"service":null}') : rm.parse($apply($slice, reqRaw, [nl + 1]));
    deepFreezeInfo(info);
    rm.routeInfo = info;
    rm.routeSeq = callSeq;
  }
  return rm.routeInfo!;
}

function deepFreezeInfo(v: any): void {
  if (v !== null && typeof v === 'object') {
    const keys = $keys(v);
    for (let i = 0; i < keys.length; i++) deepFreezeInfo(v[keys[i]]);
    $freeze(v);
  }
}

export const pdkNode = $freeze({
  /** The gateway's id: a UUID, the same for every worker of a node and across restarts (see README). */
  getId() { checkPhase('node.getId', WITHOUT_REQUEST); return NODE.id; },
  getHostname() { checkPhase('node.getHostname', WITHOUT_REQUEST); return NODE.hostname; },
  /** Isogate's version (Kong's kong.version). */
  getVersion() { checkPhase('node.getVersion', WITHOUT_REQUEST); return NODE.version; },
} satisfies PdkNode);

export const pdkRouter = $freeze({
  /** The matched route, in Kong's field names: id, name, protocols, methods, hosts, paths, strip_path, preserve_host, service.id. Frozen. */
  getRoute() { checkPhase('router.getRoute', ANY_PHASE); return routeInfo().route; },
  /** The route's service: id, name, protocol, host, port, path, retries and timeouts (ms). Frozen. */
  getService() { checkPhase('router.getService', ANY_PHASE); return routeInfo().service; },
} satisfies PdkRouter);

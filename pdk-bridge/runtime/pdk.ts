// In-isolate runtime: the PDK a plugin gets, mounted from the list of namespaces below,
// one module each. Checked at compile time against pdk-bridge/types.ts (`satisfies Pdk`);
// test/pdk-bridge/types-match.test.ts checks the built runtime's keys against it too.
// Frozen, as every namespace: pdk-bridge/realm.js makes each plugin's copy in its own
// realm, forwarding to these functions.
import type { Pdk } from '../types.ts';
import { $freeze } from './prelude.ts';
import './lockdown.ts';
import { pdkCache } from './cache.ts';
import { pdkClient } from './client.ts';
import { pdkCounters } from './counters.ts';
import { pdkCrypto } from './crypto.ts';
import { pdkCtx } from './ctx.ts';
import { pdkHttp } from './http.ts';
import { pdkLog } from './log.ts';
import { pdkNode, pdkRouter } from './node-router.ts';
import { pdkRequest } from './request.ts';
import { pdkResponse, pdkResponseMore } from './response.ts';
import { pdkService } from './service.ts';
import { pdkServiceRequest, pdkServiceRequestMore } from './service-request.ts';
import { pdkServiceResponse } from './service-response.ts';

export const pdk = $freeze({
  request: pdkRequest,
  serviceRequest: $freeze({ ...pdkServiceRequest, ...pdkServiceRequestMore }),
  response: $freeze({ ...pdkResponse, ...pdkResponseMore }),
  serviceResponse: pdkServiceResponse,
  service: pdkService,
  client: pdkClient,
  ctx: pdkCtx,
  log: pdkLog,
  node: pdkNode,
  router: pdkRouter,
  cache: pdkCache,
  counters: pdkCounters,
  crypto: pdkCrypto,
  http: pdkHttp,
} satisfies Pdk);

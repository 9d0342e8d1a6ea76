/**
 * Limits: what bounds an isolate (memoryMb, its V8 heap), what bounds one call (cpuMs, and
 * the bytes out below), what a tenant gets of a worker's CPU (cpuWeight, its share under
 * contention, and cpuMaxMs, an optional hard cap per second; sandbox/budget.ts). Defaults
 * apply where the config says nothing; ceilings are the operator's caps that no tenant or
 * plugin config may exceed.
 */
/**
 * Caps on what one call may hand back to the host. The in-isolate runtime gets this very
 * object (`CAPS`, an esbuild define of sandbox/runtime-build.ts) and enforces each cap at the PDK call that would exceed it,
 * before encoding anything; the host checks them again before it parses.
 */
export const OUTPUT_CAPS = {
  /** Bytes of the JSON result of one call (operations, ctx, faults). */
  maxResultBytes: 4 * 1024 * 1024,
  /** Operations one call may return. */
  maxOps: 1000,
  /** Bytes of a header name plus value set by a plugin. */
  maxHeaderBytes: 16 * 1024,
  /**
   * Bytes of a body given to response.exit or response.setRawBody, and of the upstream
   * response a `response` phase buffers (a larger one fails the request, ISG_ERR_PLUGIN_FAILED
   * with a too_large fault: the response phase cannot see it whole).
   */
  maxBodyBytes: 4 * 1024 * 1024,
  /**
   * Bytes of the client's request body the gateway buffers for a chain with a plugin that
   * declares `reads: ['body']` (a larger body streams upstream untouched and
   * request.getRawBody() is null), and of a body given to serviceRequest.setRawBody/setBody.
   */
  maxRequestBodyBytes: 8 * 1024 * 1024,
  /** Characters of one chunk given to response.setChunk in bodyFilter. */
  maxChunkBytes: 1024 * 1024,
  /**
   * Bytes a bodyFilter chain may send to the client in one response, all chunks together:
   * past it the response is cut (the connection closed) and the plugin faults as too_large.
   * Stops a filter that amplifies each chunk.
   */
  maxFilteredBodyBytes: 256 * 1024 * 1024,
  /** Parts of a multipart body, or fields of a form body, a PDK parser or encoder accepts. */
  maxBodyParts: 1000,
  /**
   * Objects and arrays a JSON body parsed by getBody may hold (counted as "[" and "{" before
   * the parse, strings included): a JSON bomb ("[[[[..." of 8 MB) would build hundreds of MB
   * in one JSON.parse, which no limit interrupts until it returns.
   */
  maxJsonContainers: 262144,
  /** Bytes of pdk.ctx.shared carried between phases. */
  maxCtxBytes: 64 * 1024,
  /** Headers one response.exit may set. */
  maxExitHeaders: 100,
  /** Characters of one pdk.log line; a longer line is cut. */
  maxLogChars: 4096,
  /** pdk.log lines one call may write; later lines are dropped. */
  maxLogLines: 64,
  /** service.setRetries: retries of a request whose connection to the upstream failed. */
  maxRetries: 10,
  /** service.setTimeouts: the connect timeout, in ms. */
  maxConnectTimeoutMs: 60_000,
  /** service.setTimeouts: the write and read timeouts, in ms. */
  maxTimeoutMs: 600_000,
  /** Characters of one log.setSerializeValue value, encoded. */
  maxSerializeValueChars: 16 * 1024,
  /** log.setSerializeValue calls kept per request (they travel with pdk.ctx, under its cap). */
  maxSerializeValues: 256,
  /** Characters of each string client.authenticate reads (consumer id, username, custom id, a tag, credential id and kind). */
  maxAuthFieldChars: 256,
  /** Tags client.authenticate reads from a consumer. */
  maxAuthTags: 64,
  /** Async PDK calls (cache, counters, http, crypto) one phase of one request may make. */
  maxAsyncCalls: 32,
  /** Characters of the JSON arguments of one async PDK call (a cache value, an http body). */
  maxAsyncArgBytes: 1024 * 1024,
  /** Characters of the JSON result of one async PDK call, copied into the isolate. */
  maxAsyncResultBytes: 1024 * 1024,
  /** Characters of a cache or counter key. */
  maxStateKeyChars: 512,
  /** Bytes crypto.randomBytes may hand out in one call. */
  maxRandomBytes: 1024,
  /** Characters of a credential key looked up by client.findCredential (the config's longest key-auth key). */
  maxCredentialKeyChars: 16384,
  /** Characters of a password client.verifyPassword checks. */
  maxPasswordChars: 1024,
  /** Characters of the signing input (a JWT's header.payload) client.verifyCredentialSignature checks: a request header's size. */
  maxSigningInputChars: 16384,
  /** Characters of the base64url signature client.verifyCredentialSignature checks (an RSA-8192 signature is 1366). */
  maxSignatureChars: 2048,
} as const;

/**
 * Async PDK calls, host side: how long a waiting chain may wait, and what the services
 * may hold. wallMs is a per-instance limit (defaults and ceilings below); the rest are caps.
 */
export const ASYNC_CAPS = {
  /** Outbound http.request calls one phase of one request may make (within maxAsyncCalls). */
  maxHttpCalls: 8,
  /** Bytes of an http.request response body; a longer one fails the call. */
  maxHttpResponseBytes: 1024 * 1024,
  /** Response headers copied into the isolate, at most. */
  maxHttpResponseHeaders: 100,
  /** Counter window, at most (a day), in seconds. */
  maxCounterWindowSeconds: 86400,
  /** Items of one counters.incrementMany call, at most (rate-limiting needs one per window). */
  maxCounterBatch: 16,
  /** Distinct counters the local store keeps, at most, per node; the oldest windows go first. */
  maxCounters: 1_000_000,
  /** Cache ttl and negTtl, at most, in seconds (a day). */
  maxCacheTtlSeconds: 86400,
  /**
   * client.verifyPassword calls one phase of one request may make (within maxAsyncCalls):
   * each is an scrypt on the thread pool, so one request must not buy 32 of them.
   */
  maxPasswordChecks: 2,
} as const;

/** Per-tenant, per-worker cache bounds when the config says nothing (sandbox.cache). */
export const DEFAULT_CACHE = { maxEntries: 10_000, maxBytes: 16 * 1024 * 1024 } as const;

/** cpuMaxMs null: no hard cap (the weight alone decides, and only under contention). */
/** wallMs: time one plugin instance may spend waiting on async PDK calls in one phase of one request. */
export const DEFAULT_LIMITS: Limits = { cpuMs: 50, memoryMb: 64, cpuWeight: 100, cpuMaxMs: null, wallMs: 5000 };
export const DEFAULT_CEILINGS: Limits = { cpuMs: 1000, memoryMb: 1024, cpuWeight: 10000, cpuMaxMs: null, wallMs: 60000 };

export type Limits = { cpuMs: number; memoryMb: number; cpuWeight: number; cpuMaxMs: number | null; wallMs: number };

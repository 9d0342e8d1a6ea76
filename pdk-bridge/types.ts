/**
 * Types of the PDK as plugin code sees it inside the isolate. Plugins import them with
 * `import type` (erased at bundling): nothing of the host is ever imported at run time.
 */
export type HeaderValue = string | number;

export interface PdkRequest {
  getMethod(): string;
  /** Path without the query string, as the client sent it. */
  getPath(): string;
  getRawQuery(): string;
  /** Parsed query; a repeated argument is an array. */
  getQuery(): Readonly<Record<string, string | string[]>>;
  getQueryArg(name: string): string | string[] | undefined;
  /** The Host header without its port, lower case (Kong's get_host); '' when absent. */
  getHost(): string;
  /** The port the gateway received the request on. */
  getPort(): number;
  /** Case-insensitive; repeated headers come joined with ", " (set-cookie as an array). */
  getHeader(name: string): string | string[] | undefined;
  getHeaders(): Readonly<Record<string, string | string[]>>;
  /** The peer's address (as client.getIp()). */
  getClientIp(): string;
  getScheme(): 'http' | 'https';
  /**
   * rewrite/access, for a plugin that exports `reads: ['body']`: the client's body as UTF-8
   * text; '' when there is none; null when it was larger than the cap (8 MB: it then went
   * upstream untouched, streamed). Throws for a plugin that did not declare it reads the body.
   */
  getRawBody(): string | null;
  /**
   * The body parsed by `mimeType` or the Content-Type: JSON (any value), form or multipart
   * (field name -> value; a repeated name gives an array; a file part's value is its
   * content as text). null as getRawBody. Throws on an unsupported type or a malformed
   * body (more than 1000 parts or fields, a bad or missing boundary, an unterminated part).
   */
  getBody(mimeType?: string): unknown;
  /** X-Forwarded-* from a peer in proxy.trustedProxies (first value), else the request's own. */
  getForwardedScheme(): string;
  getForwardedHost(): string;
  getForwardedPort(): number;
  getForwardedPath(): string;
  /** X-Forwarded-Prefix from a trusted proxy, else undefined. */
  getForwardedPrefix(): string | undefined;
  /** 1.0 or 1.1. */
  getHttpVersion(): number;
  /** The path as sent, not normalized, without the query. */
  getRawPath(): string;
  /** Path and query as sent. */
  getPathWithQuery(): string;
  /** When the gateway received the request, ms since the epoch. */
  getStartTime(): number;
  /** Prefix routes only: unnamed[0] is the part of the path the route's prefix matched; named is empty. */
  getUriCaptures(): { readonly unnamed: readonly string[]; readonly named: Readonly<Record<string, string>> };
}

export interface PdkClient extends PdkClientConsumer {
  /** The peer's address. */
  getIp(): string;
  /** The last X-Forwarded-For entry when the peer is a trusted proxy, else the peer's address. */
  getForwardedIp(): string;
  getPort(): number;
  /** As getPort(): no header carries the client's port. */
  getForwardedPort(): number;
  /** 'http'; with allowTerminated, the X-Forwarded-Proto (http/https) of a trusted proxy. */
  getProtocol(allowTerminated?: boolean): 'http' | 'https';
}

export interface PdkService {
  /** access (the service is not known in rewrite): send the request to host:port, which must be the service's url's or one of its `targets`. */
  setTarget(host: string, port: number): void;
  /** access: retries (0-10) of a request without a body whose connection failed. */
  setRetries(retries: number): void;
  /** access: timeouts in ms (connect <= 60000, write and read <= 600000). */
  setTimeouts(connectTimeout: number, writeTimeout: number, readTimeout: number): void;
}

export interface PdkNode {
  /** A UUID, the same for every worker of a node and across restarts. */
  getId(): string;
  getHostname(): string;
  getVersion(): string;
}

/** A route as the PDK shows it (Kong's field names). */
export type PdkRoute = {
  readonly id: string;
  readonly name: string;
  readonly protocols: readonly string[];
  readonly methods: readonly string[] | null;
  readonly hosts: readonly string[] | null;
  readonly paths: readonly string[];
  readonly strip_path: boolean;
  readonly preserve_host: boolean;
  readonly service: { readonly id: string };
};

/** A service as the PDK shows it (Kong's field names; timeouts in ms). */
export type PdkServiceInfo = {
  readonly id: string;
  readonly name: string;
  readonly protocol: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly retries: number;
  readonly connect_timeout: number;
  readonly write_timeout: number;
  readonly read_timeout: number;
};

export interface PdkRouter {
  /**
   * The matched route. In rewrite it is null (rewrite runs before the route is chosen; Kong's
   * get_route is nil there too); typed for the phases after it, where there always is one.
   */
  getRoute(): PdkRoute;
  /** The route's service; null in rewrite, as getRoute. */
  getService(): PdkServiceInfo;
}

/** JSON data, or for form/multipart an object of field -> string (or string list). */
export type BodyValue = unknown;

export interface PdkServiceRequest {
  setHeader(name: string, value: HeaderValue): void;
  addHeader(name: string, value: HeaderValue): void;
  clearHeader(name: string): void;
  /** Path sent upstream (after the service's base path); must start with "/". */
  setPath(path: string): void;
  /** Raw query string sent upstream, without "?". */
  setRawQuery(query: string): void;
  /**
   * rewrite/access (Kong's enable_buffering): buffer the upstream's whole response for this
   * request (<= 4 MB), so headerFilter can read serviceResponse.getRawBody/getBody.
   */
  enableBuffering(): void;
  /** rewrite/access: the body sent upstream instead of the client's (UTF-8; Content-Length set by the gateway), <= 8 MB. */
  setRawBody(body: string): void;
  /**
   * rewrite/access: `body` encoded by `mimeType` (also set as the upstream Content-Type),
   * else by the request's Content-Type, else as JSON: JSON, form or multipart (the type's
   * boundary). A string is sent as it is.
   */
  setBody(body: BodyValue, mimeType?: string): void;
  /** Each header replaces the one of its name; an array sends it once per element. */
  setHeaders(headers: Record<string, HeaderValue | HeaderValue[]>): void;
  setScheme(scheme: 'http' | 'https'): void;
  /** Kong's methods, less CONNECT. */
  setMethod(method: string): void;
  /** The query sent upstream, from a table: an array repeats the argument, true sends the bare name, false leaves it out. */
  setQuery(args: Record<string, string | number | boolean | (string | number | boolean)[]>): void;
  /** Removes every occurrence of the argument from the query sent upstream. */
  clearQueryArg(name: string): void;
}

export interface PdkResponse {
  /** rewrite/access: answer now; the upstream is not called, later plugins are skipped. */
  exit(status: number, body?: string | object | null, headers?: Record<string, HeaderValue>): never;
  setHeader(name: string, value: HeaderValue): void;
  addHeader(name: string, value: HeaderValue): void;
  clearHeader(name: string): void;
  getStatus(): number;
  getHeader(name: string): string | string[] | undefined;
  getHeaders(): Readonly<Record<string, string | string[]>>;
  /** headerFilter, bodyFilter, log: who made the response. */
  getSource(): 'exit' | 'service' | 'error';
  /** rewrite/access: exit with 400-599 and `{"message": ...}` (Kong's default message when none is given). */
  error(status: number, message?: string | object, headers?: Record<string, HeaderValue>): never;
  setHeaders(headers: Record<string, HeaderValue | HeaderValue[]>): void;
  /** response, headerFilter: the status sent to the client, 200 to 599. */
  setStatus(status: number): void;
  /** response: the whole response body as text (the upstream's, or what an earlier plugin set). */
  getRawBody(): string;
  /** response: replaces the whole body sent to the client, <= 4 MB. */
  setRawBody(body: string): void;
  /** bodyFilter: this chunk as text, cut at character boundaries, as earlier plugins left it. */
  getChunk(): string;
  /** bodyFilter: replaces this chunk ('' drops it), <= 1 MB; the response is cut past 256 MB sent. */
  setChunk(chunk: string): void;
  /** bodyFilter: this call carries the end of the body (its chunk may be ''). */
  isLastChunk(): boolean;
}

/** The upstream's own response (Kong's kong.service.response). */
export interface PdkServiceResponse {
  /** response, headerFilter: the upstream's status, before any plugin changed it. */
  getStatus(): number;
  getHeader(name: string): string | string[] | undefined;
  getHeaders(): Readonly<Record<string, string | string[]>>;
  /**
   * response, and headerFilter when the response was buffered (a response phase in the
   * chain, or serviceRequest.enableBuffering()): the upstream's body as text, as it came; else null.
   */
  getRawBody(): string | null;
  /** The upstream's body parsed by `mimeType` or its Content-Type (JSON, form, multipart); null as getRawBody. */
  getBody(mimeType?: string): BodyValue;
}

export interface PdkCtx {
  /** Per-request data shared by the tenant's plugins across phases (JSON values only). */
  readonly shared: Record<string, unknown>;
  /** Per-request data of this plugin instance only, across phases (JSON values only). */
  readonly plugin: Record<string, unknown>;
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

export interface PdkLog {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  /** log phase: Kong's basic log serializer shape (see pdk-bridge/README.md). */
  serialize(): Record<string, unknown>;
  /** Any phase: changes what serialize() returns for this request (dotted key; undefined deletes). */
  setSerializeValue(key: string, value: unknown, options?: { mode?: 'set' | 'add' | 'replace' }): void;
}

/** A consumer as plugins see it: never a credential secret. */
export interface PdkConsumer {
  readonly id: string;
  readonly username: string;
  readonly customId: string | null;
  readonly tags: readonly string[];
}

/** The credential a consumer authenticated with: its id and kind (Kong's plugin name), never its key, password or secret. */
export interface PdkCredential {
  readonly id: string;
  /** 'key-auth', 'basic-auth', 'jwt', 'acl', or what an outside identity's plugin said (null when it said nothing). */
  readonly kind: string | null;
  /** null for a credential of an outside identity (authenticate(null, credential)). */
  readonly consumer: { readonly id: string } | null;
}

/** The consumer half of pdk.client (Kong's kong.client.get_consumer, get_credential, authenticate). */
export interface PdkClientConsumer {
  /**
   * The authenticated consumer, or null. Frozen. In the call that authenticated, the
   * fields that were passed to authenticate (checked against the host's record); in later
   * phases, the host's whole record.
   */
  getConsumer(): PdkConsumer | Readonly<Partial<PdkConsumer> & { id: string }> | null;
  getCredential(): PdkCredential | null;
  /**
   * Sets the request's consumer and credential (rewrite and access only). Either may be
   * null, not both: (consumer, null) is Kong's anonymous consumer, (null, credential) an
   * outside identity without a consumer. The plugins after this one in the phase, and the
   * later phases, run the consumer's scoped instances (a plugin that already ran keeps its
   * config). An unknown consumer id, or a field
   * that differs from the consumer's record, fails the call as a bad return.
   */
  authenticate(
    consumer: { id: string; username?: string; customId?: string | null; tags?: readonly string[] } | null,
    credential: { id: string; kind?: string } | null,
  ): void;
  /**
   * Async lookups in the tenant's consumers, answered by the host: loadConsumer,
   * findCredential and getConsumerGroups in rewrite, access and response; verifyPassword
   * and verifyCredentialSignature in rewrite and access.
   * Kong's kong.client.load_consumer: by id, else (byUsername) by username; null when none.
   */
  loadConsumer(idOrUsername: string, byUsername?: boolean): Promise<PdkConsumer | null>;
  /** The credential whose lookup key is `key` (key-auth key, basic-auth username, jwt key: the `iss`), with its consumer; null when none. */
  findCredential(kind: 'key-auth' | 'basic-auth' | 'jwt', key: string): Promise<{ consumer: PdkConsumer; credential: PdkLookedUpCredential } | null>;
  /** The ACL groups of a consumer (default: the authenticated one), in config order; null for an unknown consumer. */
  getConsumerGroups(consumerId?: string): Promise<string[] | null>;
  /** basic-auth: whether `password` is the credential's, checked on the host (the hash never enters the isolate). */
  verifyPassword(credentialId: string, password: string): Promise<boolean>;
  /**
   * jwt: whether `signature` (base64url) signs `signingInput` ("header.payload") under the
   * credential's secret or public key, verified on the host; false unless `alg` is the
   * credential's own algorithm.
   */
  verifyCredentialSignature(credentialId: string, alg: JwsAlgorithm, signingInput: string, signature: string, opts?: { secretIsBase64?: boolean }): Promise<boolean>;
}

/** A credential as findCredential returns it: no key, hash or secret; a jwt one's algorithm. */
export type PdkLookedUpCredential = {
  readonly id: string;
  readonly kind: 'key-auth' | 'basic-auth' | 'jwt';
  readonly consumer: { readonly id: string };
  readonly algorithm?: JwsAlgorithm;
};

/** JSON data: what the cache keeps and what async calls carry. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Async calls (rewrite, access, response, log): each crosses to the host; see pdk-bridge/README.md "Async calls". */
export interface PdkCache {
  /** The value; null for a cached miss (negTtl); undefined when nothing is cached. */
  get(key: string): Promise<Json | undefined>;
  /** ttl, negTtl in seconds (Kong's names); a null value with negTtl caches a miss. */
  set(key: string, value: Json | undefined, opts?: { ttl?: number; negTtl?: number }): Promise<true>;
  delete(key: string): Promise<true>;
  probe(key: string): Promise<{ ttl: number | null; negative: boolean; value: Json } | null>;
}

export type CounterOptions = { cluster?: boolean };

export interface PdkCounters {
  /**
   * Adds `by` (default 1) in the current window of `windowSeconds` (default 1); the new count.
   * The node's store (shared by its workers), or with `{ cluster: true }` the cluster's (Redis; on
   * a single node, a cluster of one, the node's). Rejects when the store does not answer (Redis down).
   */
  increment(key: string, by?: number, windowSeconds?: number, opts?: CounterOptions): Promise<number>;
  get(key: string, windowSeconds?: number, opts?: CounterOptions): Promise<number>;
  /** Up to 16 counters in one crossing and one store call; their new counts, in order. */
  incrementMany(items: readonly { key: string; by?: number; windowSeconds?: number }[], opts?: CounterOptions): Promise<number[]>;
}

export type DigestAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export type TextEncoding = 'hex' | 'base64' | 'base64url';
export type JwsAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

export interface PdkCrypto {
  digest(alg: DigestAlgorithm, data: string, encoding?: TextEncoding): Promise<string>;
  hmac(alg: DigestAlgorithm, key: string, data: string, encoding?: TextEncoding): Promise<string>;
  randomBytes(size: number, encoding?: TextEncoding): Promise<string>;
  timingSafeEqual(a: string, b: string): Promise<boolean>;
  /** JWS signature check: key a secret (HS), a PEM string or a JWK; signature base64url. */
  verify(alg: JwsAlgorithm, key: string | Record<string, Json>, data: string, signature: string): Promise<boolean>;
  base64Encode(data: string, url?: boolean): Promise<string>;
  base64Decode(data: string): Promise<string>;
}

export interface PdkHttp {
  /** Only to the tenant's allowed hosts (tenants[].http.allow, intersected with capabilities.http). Redirects are not followed. */
  request(url: string, opts?: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<{ status: number; headers: Record<string, string>; body: string }>;
}

export interface Pdk {
  readonly request: PdkRequest;
  readonly serviceRequest: PdkServiceRequest;
  readonly response: PdkResponse;
  readonly serviceResponse: PdkServiceResponse;
  readonly service: PdkService;
  readonly client: PdkClient;
  readonly ctx: PdkCtx;
  readonly log: PdkLog;
  readonly node: PdkNode;
  readonly router: PdkRouter;
  readonly cache: PdkCache;
  readonly counters: PdkCounters;
  readonly crypto: PdkCrypto;
  readonly http: PdkHttp;
}

/** A phase handler: gets the PDK and the instance's validated, frozen config. */
export type Handler<C = Record<string, unknown>> = (pdk: Pdk, config: Readonly<C>) => void | Promise<void>;

/**
 * The PDK of `configure`: only what needs no request (its log lines go to the gateway log
 * with phase "configure"). No request, response, ctx, cache, counters or http: configure
 * runs while the tenant's isolate is built, synchronously, before any request.
 */
export interface ConfigurePdk {
  readonly log: Pick<PdkLog, 'debug' | 'info' | 'warn' | 'error'>;
  readonly node: PdkNode;
}

/**
 * Kong 3's `configure(configs)`: called when the tenant's isolate is built (the first
 * request after a start or a reload that changed the tenant, and again whenever that
 * isolate is rebuilt), before any handler of the plugin runs there; once per plugin with
 * the validated configs (defaults applied) of all its enabled instances of the tenant, in
 * config order. Each element is the same frozen object a handler gets as `config`, so a
 * WeakMap keyed by it keeps what configure made of it. Synchronous, under the plugin's
 * CPU limit; a throw, a returned promise or a stop disables the plugin's instances for
 * that config (their requests fail as a plugin fault; the tenant's other plugins serve).
 */
export type ConfigureHandler<C = Record<string, unknown>> = (pdk: ConfigurePdk, configs: readonly Readonly<C>[]) => void;

/** A plugin module's exports (the short form, or a folder's handler): metadata, phase handlers, configure. */
export interface PluginModule<C = Record<string, unknown>> {
  readonly name: string;
  readonly version: string;
  readonly priority: number;
  /** ['body']: the plugin reads the client's body (request.getRawBody/getBody). */
  readonly reads?: readonly 'body'[];
  readonly capabilities?: { readonly http?: readonly string[] };
  readonly rewrite?: Handler<C>;
  readonly access?: Handler<C>;
  readonly response?: Handler<C>;
  readonly headerFilter?: Handler<C>;
  readonly bodyFilter?: Handler<C>;
  readonly log?: Handler<C>;
  readonly configure?: ConfigureHandler<C>;
}

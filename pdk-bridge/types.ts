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
  getHost(): string | undefined;
  /** Case-insensitive; repeated headers come joined with ", " (set-cookie as an array). */
  getHeader(name: string): string | string[] | undefined;
  getHeaders(): Readonly<Record<string, string | string[]>>;
  getClientIp(): string;
  getScheme(): 'http' | 'https';
}

export interface PdkServiceRequest {
  setHeader(name: string, value: HeaderValue): void;
  addHeader(name: string, value: HeaderValue): void;
  clearHeader(name: string): void;
  /** Path sent upstream (after the service's base path); must start with "/". */
  setPath(path: string): void;
  /** Raw query string sent upstream, without "?". */
  setRawQuery(query: string): void;
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
  /** bodyFilter: the whole upstream body, as text. */
  getBody(): string;
  setBody(body: string): void;
}

export interface PdkCtx {
  /** Per-request data shared by the tenant's plugins across phases (JSON values only). */
  readonly shared: Record<string, unknown>;
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

export interface PdkLog {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** JSON data: what the cache keeps and what async calls carry. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Async calls (rewrite, access, log): each crosses to the host; see pdk-bridge/README.md "Async calls". */
export interface PdkCache {
  /** The value; null for a cached miss (negTtl); undefined when nothing is cached. */
  get(key: string): Promise<Json | undefined>;
  /** ttl, negTtl in seconds (Kong's names); a null value with negTtl caches a miss. */
  set(key: string, value: Json | undefined, opts?: { ttl?: number; negTtl?: number }): Promise<true>;
  delete(key: string): Promise<true>;
  probe(key: string): Promise<{ ttl: number | null; negative: boolean; value: Json } | null>;
}

export interface PdkCounters {
  /** Adds `by` (default 1) in the current window of `windowSeconds` (default 1); the new count. Shared by the workers of a node. */
  increment(key: string, by?: number, windowSeconds?: number): Promise<number>;
  get(key: string, windowSeconds?: number): Promise<number>;
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
  readonly ctx: PdkCtx;
  readonly log: PdkLog;
  readonly cache: PdkCache;
  readonly counters: PdkCounters;
  readonly crypto: PdkCrypto;
  readonly http: PdkHttp;
}

/** A phase handler: gets the PDK and the instance's validated, frozen config. */
export type Handler<C = Record<string, unknown>> = (pdk: Pdk, config: Readonly<C>) => void | Promise<void>;

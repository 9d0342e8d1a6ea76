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

export interface Pdk {
  readonly request: PdkRequest;
  readonly serviceRequest: PdkServiceRequest;
  readonly response: PdkResponse;
  readonly ctx: PdkCtx;
  readonly log: PdkLog;
}

/** A phase handler: gets the PDK and the instance's validated, frozen config. */
export type Handler<C = Record<string, unknown>> = (pdk: Pdk, config: Readonly<C>) => void | Promise<void>;

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
}

export interface PdkClient extends PdkClientConsumer {}

export interface Pdk {
  readonly request: PdkRequest;
  readonly serviceRequest: PdkServiceRequest;
  readonly response: PdkResponse;
  readonly ctx: PdkCtx;
  readonly log: PdkLog;
  readonly client: PdkClient;
}

/** A phase handler: gets the PDK and the instance's validated, frozen config. */
export type Handler<C = Record<string, unknown>> = (pdk: Pdk, config: Readonly<C>) => void | Promise<void>;

/** The config file as validated by schema.ts, defaults applied. */
export type LimitsInput = {
  cpuMs?: number;
  memoryMb?: number;
  wallMs?: number;
  // A tenant's CPU share of a worker (tenant limits, defaults and ceilings only).
  cpuWeight?: number;
  cpuMaxMs?: number;
  /** Deprecated alias of cpuMaxMs. */
  cpuBudgetMs?: number;
};
export type BreakerInput = { faults?: number; windowMs?: number; cooldownMs?: number };

export type ProxyInput = {
  via: string | false;
  /** Absent only where a caller builds the input by hand: the schema fills it in. */
  bodies?: { maxRequestBodyBytes: number; maxFilteredBodyBytes: number };
  trustedProxies: string[];
  websocket: { idleTimeoutMs: number; maxMessageBytes: number };
};

export type ServiceInput = {
  name: string;
  url: string;
  timeoutMs: number;
  connectTimeoutMs: number;
  preserveHost: boolean;
  retries: number;
  targets: string[];
};

export type RouteInput = {
  name: string;
  service: string;
  hosts?: string[];
  paths?: string[];
  methods?: string[];
  stripPath: boolean;
};

export type PluginInput = {
  id?: string;
  name: string;
  path?: string;
  schema?: string;
  route?: string;
  service?: string;
  /** A consumer of the tenant, by username or id (Kong's consumer scope). */
  consumer?: string;
  config: Record<string, unknown>;
  limits?: LimitsInput;
  failOpen: boolean;
  enabled: boolean;
};

export type TenantInput = {
  name: string;
  limits?: LimitsInput;
  breaker?: BreakerInput;
  http?: { allow: string[] };
  services: ServiceInput[];
  routes: RouteInput[];
  plugins: PluginInput[];
  consumers: ConsumerInput[];
};

/** Credentials keyed by Kong's plugin names, with Kong's field names. */
export type KeyAuthInput = { id?: string; key: string };
export type BasicAuthInput = { id?: string; username: string; password_hash: string };
export type JwtInput = { id?: string; key: string; algorithm: string; secret?: string; rsa_public_key?: string };
export type AclInput = { id?: string; group: string };
export type CredentialsInput = {
  'key-auth'?: KeyAuthInput[];
  'basic-auth'?: BasicAuthInput[];
  jwt?: JwtInput[];
  acl?: AclInput[];
};

export type ConsumerInput = {
  id?: string;
  username: string;
  customId?: string;
  tags?: string[];
  credentials?: CredentialsInput;
};

/** An admin API bearer token: its SHA-256 (hex), and the tenant it is limited to (none: operator). */
export type AdminTokenInput = { name: string; sha256: string; tenant?: string };

/** `cluster`: the Redis shared by the nodes (core/cluster/). */
export type ClusterInput = {
  redis: { url: string; keyPrefix: string; connectTimeoutMs: number; commandTimeoutMs: number };
  pollIntervalMs: number;
};

export type ConfigInput = {
  listen: { host: string; port: number; reusePort: boolean };
  workers: number | 'auto';
  supervisor: { healthIntervalMs: number; healthTimeoutMs: number; startTimeoutMs: number; workerMemoryMb: number };
  admin: { host: string; port: number; tokens: AdminTokenInput[] };
  /** access: true = stdout, a path, or false / "off". */
  /** accessBacklogMb: what of the access log may wait in memory behind a full pipe. */
  log: { level: string; access: boolean | string; accessBacklogMb: number };
  limits: { defaults: LimitsInput; ceilings: LimitsInput };
  sandbox: { maxIsolates: number; idleTimeoutMs: number; maxTotalHeapMb: number; prewarm: number; breaker: BreakerInput; cache: { maxEntries: number; maxBytes: number } };
  proxy: ProxyInput;
  tenants: TenantInput[];
  /** Absent: a single node. */
  cluster?: ClusterInput;
};

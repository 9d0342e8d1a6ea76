/**
 * JSON Schema of the gateway config file (YAML). Every field has a description: the
 * README's config reference is written from it, and errors quote the field's path.
 */
import { ADMIN_TOKENS } from '../admin-api/schema.ts';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';

const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'A name: letters, digits, "_", "." and "-", at most 64 characters.' };
const listener = (host: string, port: number, what: string) => ({
  type: 'object',
  additionalProperties: false,
  description: `Where the ${what} listens.`,
  properties: {
    host: { type: 'string', default: host, description: 'Address to bind.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: port, description: 'TCP port (0 picks a free one).' },
  },
  default: {},
});
const limits = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cpuMs: { type: 'number', exclusiveMinimum: 0, description: 'CPU time one plugin may use in one phase of one request, in ms.' },
    memoryMb: { type: 'integer', minimum: 8, description: "Heap limit of the tenant's isolate, in MB (isolated-vm's minimum is 8)." },
    wallMs: { type: 'integer', minimum: 1, description: 'Time one plugin may spend waiting on async PDK calls (cache, counters, http, crypto) in one phase of one request, in ms (default 5000); past it the plugin faults as `timeout` (504).' },
  },
};

const tenantLimits = {
  ...limits,
  properties: {
    ...limits.properties,
    // CPU share of a worker, named after cgroup v2's cpu.weight and cpu.max.
    cpuWeight: { type: 'integer', minimum: 1, maximum: 10000, description: "The tenant's share of a worker's CPU when the worker is saturated (default 100, as cgroup's cpu.weight): a tenant above its weighted fair share is then throttled with 503 and Retry-After. While the worker has CPU to spare, nobody is throttled." },
    cpuMaxMs: { type: 'number', exclusiveMinimum: 0, description: "Optional hard cap: milliseconds of sandbox CPU per second the tenant may use (per worker), even on an idle worker; beyond it, 503 and Retry-After. Absent: no cap." },
    cpuBudgetMs: { type: 'number', exclusiveMinimum: 0, description: 'Deprecated alias of cpuMaxMs (a hard cap); give one of the two.' },
  },
};
const breaker = {
  type: 'object',
  additionalProperties: false,
  description: 'Circuit breaker per plugin instance: after `faults` faults within `windowMs` its requests fail fast (or skip it when fail-open) for `cooldownMs`, then one trial request is let through.',
  properties: {
    faults: { type: 'integer', minimum: 1, description: 'Faults that trip the breaker.' },
    windowMs: { type: 'integer', minimum: 1, description: 'Window in which the faults are counted, in ms.' },
    cooldownMs: { type: 'integer', minimum: 1, description: 'How long a tripped instance stays open, in ms.' },
  },
};

const credentialId = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$', description: 'Id of this credential (unique in the tenant, among consumers and credentials). Absent: derived from the consumer and the key, stable across reloads.' };
const credentials = (kind: string, required: string[], properties: Record<string, unknown>) => ({
  type: 'array',
  maxItems: 1000000,
  description: `The consumer's ${kind} credentials (Kong's ${kind} plugin's entity, with its field names).`,
  items: { type: 'object', additionalProperties: false, required, properties: { id: credentialId, ...properties } },
});
const secretText = (what: string) => ({ type: 'string', minLength: 1, maxLength: 16384, description: what });

/** `tenants[].consumers`: who a request is, once an authentication plugin has said so. */
const CONSUMERS = {
  type: 'array',
  default: [],
  description: "The tenant's consumers (Kong's consumers) and their credentials, looked up by the host for authentication plugins.",
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['username'],
    properties: {
      id: { ...credentialId, description: 'Id of the consumer (unique in the tenant). Absent: derived from the tenant and username, stable across reloads.' },
      username: { type: 'string', minLength: 1, maxLength: 256, description: 'Unique name of the consumer in the tenant.' },
      customId: { type: 'string', minLength: 1, maxLength: 256, description: 'An id from your own user store (Kong: custom_id), unique in the tenant.' },
      tags: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 128 }, description: 'Free-form labels, visible to plugins.' },
      credentials: {
        type: 'object',
        additionalProperties: false,
        description: "Credentials by kind, keyed by Kong's plugin names.",
        properties: {
          'key-auth': credentials('key-auth', ['key'], { key: secretText('The API key (unique among the tenant\'s key-auth credentials).') }),
          'basic-auth': credentials('basic-auth', ['username', 'password_hash'], {
            username: { type: 'string', minLength: 1, maxLength: 256, description: "User name sent in the Authorization header (unique among the tenant's basic-auth credentials)." },
            password_hash: { type: 'string', maxLength: 512, description: 'The password hashed as scrypt$N$r$p$salt$hash (base64url salt and hash); the admin API makes it from `password`. Never a plain password.' },
          }),
          jwt: credentials('jwt', ['key'], {
            key: { type: 'string', minLength: 1, maxLength: 512, description: "Identifies the credential: the token's `iss` claim (unique among the tenant's jwt credentials)." },
            algorithm: { enum: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'], default: 'HS256', description: 'Signing algorithm of the tokens.' },
            secret: secretText('HMAC secret (HS256/384/512).'),
            rsa_public_key: secretText('PEM public key (RS*, ES*, PS*, EdDSA).'),
          }),
          acl: credentials('acl', ['group'], { group: { type: 'string', minLength: 1, maxLength: 256, description: 'An ACL group the consumer belongs to.' } }),
        },
      },
    },
  },
};

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['tenants'],
  properties: {
    listen: {
      ...listener('0.0.0.0', 8000, 'proxy'),
      properties: {
        ...listener('0.0.0.0', 8000, '').properties,
        reusePort: {
          type: 'boolean',
          default: true,
          description: "Under a supervisor: one SO_REUSEPORT socket per worker, the kernel spreading new connections over them (nginx's `reuseport`); false, or where the OS has no SO_REUSEPORT: one socket all workers accept on.",
        },
      },
    },
    workers: {
      anyOf: [{ type: 'integer', minimum: 0, maximum: 256 }, { const: 'auto' }],
      default: 'auto',
      description: 'Worker processes behind the supervisor ("auto": one per core; 0: no supervisor, the gateway runs in the one process).',
    },
    supervisor: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How the supervisor watches its workers.',
      properties: {
        healthIntervalMs: { type: 'integer', minimum: 10, default: 500, description: 'How often each worker is pinged.' },
        healthTimeoutMs: { type: 'integer', minimum: 100, default: 3000, description: 'A worker that has not answered a ping for this long is wedged: it is killed and replaced.' },
        startTimeoutMs: { type: 'integer', minimum: 1000, default: 30000, description: 'A worker that has not loaded its config this long after it was started is stuck: it is killed and replaced (with a back-off).' },
        workerMemoryMb: { type: 'integer', minimum: 64, default: 2048, description: 'Memory bound of each worker process (a memory cgroup where the OS allows it, and a resident-size check by the supervisor); a worker over it is replaced.' },
      },
    },
    admin: {
      ...listener('127.0.0.1', 8001, 'admin listener (/metrics, /status and the admin API)'),
      properties: { ...listener('127.0.0.1', 8001, '').properties, tokens: ADMIN_TOKENS },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The gateway log (JSON lines on stdout) and the access log.',
      properties: {
        level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', description: 'Lowest level written to the log.' },
        access: {
          anyOf: [{ type: 'boolean' }, { type: 'string', minLength: 1 }],
          default: true,
          description: 'The access log, one JSON line per proxied request (Kong\'s proxy_access_log): true writes it to stdout, a file path (relative to this config file) appends it to that file, false or "off" turns it off. Independent of `level`; read at start.',
        },
        accessBacklogMb: {
          type: 'number',
          exclusiveMinimum: 0,
          default: 64,
          description: 'How much of the access log may wait in memory, per process, while the stdout pipe is full (its reader behind). Past it, lines are dropped and counted on stderr, not kept until the gateway runs out of memory. Read at start.',
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: "The operator's limits: defaults where a tenant or plugin says nothing, and ceilings none may exceed.",
      properties: {
        defaults: { ...tenantLimits, default: {}, description: 'Used where tenant and plugin config are silent.' },
        ceilings: { ...tenantLimits, default: {}, description: 'Caps on any tenant or plugin limit; a config above them is rejected.' },
      },
    },
    sandbox: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The isolate pool.',
      properties: {
        maxIsolates: { type: 'integer', minimum: 1, default: 10000, description: 'Live isolates at most; the least recently used is disposed beyond it.' },
        idleTimeoutMs: { type: 'integer', minimum: 0, default: 600000, description: 'An isolate unused this long is disposed (0: never).' },
        maxTotalHeapMb: { type: 'integer', minimum: 8, default: 4096, description: 'Heap used by all live isolates of a worker, at most (measured every 5 s); the least recently used isolates are disposed beyond it.' },
        prewarm: { type: 'integer', minimum: 0, default: 0, description: "Tenants (the first ones in the config) whose isolates each worker builds at config load and at each reload, in the background, so that their first request pays no cold start. Bounded by maxIsolates and maxTotalHeapMb; a plugin that fails to load is disabled and logged as at a request." },
        breaker: { ...breaker, default: {} },
        cache: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: "pdk.cache: each tenant's cache in each worker, an LRU bounded by entries and by bytes (keys plus JSON values).",
          properties: {
            maxEntries: { type: 'integer', minimum: 1, default: 10000, description: 'Entries per tenant per worker, at most.' },
            maxBytes: { type: 'integer', minimum: 1024, default: 16777216, description: 'Bytes per tenant per worker, at most; the least recently used entries go first.' },
          },
        },
      },
    },
    proxy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How the proxy forwards: its Via entry, the proxies it trusts, the body limits of plugin phases and the limits of proxied WebSocket connections.',
      properties: {
        bodies: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'Bodies seen by plugins (pdk-bridge/README.md). Routes whose plugins do not read or filter bodies stream them untouched, whatever these say.',
          properties: {
            maxRequestBodyBytes: { type: 'integer', minimum: 0, maximum: 67108864, default: OUTPUT_CAPS.maxRequestBodyBytes, description: "Client body the gateway buffers for a route with a plugin that exports reads: ['body'] (Kong's client_body_buffer_size); a larger body streams upstream untouched and request.getRawBody() is null." },
            maxFilteredBodyBytes: { type: 'integer', minimum: 1024, default: OUTPUT_CAPS.maxFilteredBodyBytes, description: 'Bytes a bodyFilter chain may send in one response; past it the response is cut and the plugin faults as too_large.' },
          },
        },
        trustedProxies: {
          type: 'array',
          default: [],
          items: { type: 'string', minLength: 1, maxLength: 64 },
          description: "Addresses or CIDR blocks (\"10.0.0.0/8\", \"::1\") of proxies in front of the gateway (Kong's trusted_ips): only from a peer in this list are X-Forwarded-For/-Proto/-Host/-Port/-Path/-Prefix believed by pdk.request.getForwarded* and pdk.client.getForwardedIp. Empty (the default): trust no one.",
        },
        via: {
          anyOf: [{ type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$" }, { const: false }],
          default: 'isogate',
          description: 'Pseudonym this gateway adds to Via on proxied requests and responses ("1.1 <pseudonym>", RFC 9110 section 7.6.3), an HTTP token; false: no Via. Kong: the `via` entry of its `headers` setting.',
        },
        websocket: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'Proxied WebSocket (HTTP/1.1 Upgrade) connections.',
          properties: {
            idleTimeoutMs: { type: 'integer', minimum: 1, default: 60000, description: 'A tunnel with no byte in either direction for this long is closed (nginx proxy_read_timeout has the same 60 s default).' },
            maxMessageBytes: { type: 'integer', minimum: 125, default: 16777216, description: 'Largest data message either side may send, in bytes on the wire (fragments summed); a bigger one closes the tunnel (close code 1009 to a client that sent it).' },
          },
        },
      },
    },
    cluster: {
      type: 'object',
      additionalProperties: false,
      required: ['redis'],
      description: 'Run as one node of a cluster: the tenants live in Redis, changed through the admin API of any node and applied by every node (README "Running a cluster"). This file then holds the node\'s own settings (listeners, workers, log, admin tokens, limits, sandbox, proxy) and its tenants only seed an empty Redis. Absent: a single node, configured by this file.',
      properties: {
        redis: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          description: 'The Redis every node of the cluster shares (one server or a primary; not Redis Cluster).',
          properties: {
            url: { type: 'string', pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db] (rediss:// for TLS).' },
            keyPrefix: { type: 'string', pattern: '^[^\\s]{0,64}$', default: 'isogate:', description: 'Prefix of every key and channel this cluster uses, so several clusters can share one Redis.' },
            connectTimeoutMs: { type: 'integer', minimum: 1, default: 2000, description: 'How long connecting may take; at start, a node that cannot connect this fast starts on its last good config and keeps trying.' },
            commandTimeoutMs: { type: 'integer', minimum: 1, default: 500, description: 'How long one command (a config read, a counter increment) may take before it fails.' },
          },
        },
        pollIntervalMs: { type: 'integer', minimum: 100, default: 5000, description: 'Besides the pub/sub message each change sends, every node checks the config version this often (a message lost while a connection was down is caught up here, and at every reconnect).' },
      },
    },
    tenants: {
      type: 'array',
      description: 'Each tenant owns its services, routes and plugin instances; its plugins run in its own isolate.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { ...name, description: 'Tenant name, unique in the file.' },
          limits: { ...tenantLimits, description: "Limits for this tenant's plugins (override the operator's defaults)." },
          breaker: { ...breaker, description: "This tenant's breaker settings (override sandbox.breaker)." },
          http: {
            type: 'object',
            additionalProperties: false,
            description: "pdk.http: the hosts this tenant's plugins may call (operator-only: a tenant token cannot change it). A plugin that declares capabilities.http gets the intersection.",
            properties: {
              allow: {
                type: 'array',
                items: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$' },
                default: [],
                description: 'Host names or addresses, "name" (any port) or "name:port". Loopback and link-local addresses are reached only when listed as addresses, never through a name.',
              },
            },
          },
          services: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'url'],
              properties: {
                name: { ...name, description: 'Service name, unique in the tenant.' },
                url: { type: 'string', pattern: '^http://[^/?#\\s]+(/[^?#\\s]*)?$', description: 'Upstream base URL, http://host:port/optional/base/path.' },
                timeoutMs: { type: 'integer', minimum: 1, default: 60000, description: 'How long the upstream may take to send its headers, and between body chunks, before a 504.' },
                connectTimeoutMs: { type: 'integer', minimum: 1, default: 5000, description: 'How long connecting to the upstream may take.' },
                preserveHost: { type: 'boolean', default: true, description: "Send the client's Host header upstream (false: the service URL's host)." },
                retries: { type: 'integer', minimum: 0, maximum: 10, default: 0, description: "Times a request without a body is sent again when the connection to the upstream fails before any response (Kong's retries; a plugin may change it with pdk.service.setRetries)." },
                targets: {
                  type: 'array',
                  default: [],
                  items: { type: 'string', pattern: '^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$' },
                  description: 'Other "host:port" (IPv6 in brackets) this service may be sent to by pdk.service.setTarget, besides the host and port of its url; a plugin can reach nothing else.',
                },
              },
            },
          },
          routes: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'service'],
              properties: {
                name: { ...name, description: 'Route name, unique in the tenant.' },
                service: { type: 'string', description: 'Name of the service of this tenant that the route forwards to.' },
                hosts: {
                  type: 'array',
                  items: { type: 'string', pattern: '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$' },
                  description: 'Host names (exact, or "*.example.com" for any subdomain); absent: any host.',
                },
                paths: {
                  type: 'array',
                  items: { type: 'string', pattern: '^/[^?#\\s]*$' },
                  description: 'Path prefixes, matched on whole segments ("/api" matches "/api" and "/api/x", not "/apix"); absent: "/".',
                },
                methods: {
                  type: 'array',
                  items: { type: 'string', pattern: '^[A-Z]+$' },
                  description: 'HTTP methods (upper case); absent: any method.',
                },
                stripPath: { type: 'boolean', default: false, description: 'Remove the matched prefix from the path sent upstream.' },
              },
            },
          },
          plugins: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name'],
              properties: {
                id: { ...name, description: 'Id of this plugin instance in the admin API (`/tenants/{tenant}/plugins/{id}`); the API gives one to the instances it creates. Absent: `<name>@<scope>` (scope: tenant, route:<name> or service:<name>).' },
                name: { type: 'string', description: 'Plugin name: a bundled plugin (plugins/<name>) or, with `path`, the name the module exports.' },
                path: { type: 'string', description: 'A plugin of your own, relative to this config file: its entry file, or its folder (plugin.json, schema.json and the handler: plugins/README.md).' },
                schema: { type: 'string', description: "JSON Schema file for the plugin's config, relative to this config file (bundled plugins ship their own)." },
                route: { type: 'string', description: 'Apply only to this route of the tenant.' },
                service: { type: 'string', description: 'Apply only to the routes of this service of the tenant.' },
                consumer: { type: 'string', description: "Apply only to requests a plugin authenticated as this consumer of the tenant (its username or id). Combines with route and service; Kong's precedence picks one instance per plugin name." },
                config: { type: 'object', default: {}, description: "The instance's config, validated against the plugin's schema." },
                limits: { ...limits, description: 'Limits of this instance.' },
                failOpen: { type: 'boolean', default: false, description: 'On a fault, skip this plugin and go on instead of failing the request.' },
                enabled: { type: 'boolean', default: true, description: 'false: keep the entry but do not run it.' },
              },
            },
          },
          consumers: CONSUMERS,
        },
      },
    },
  },
} as const;

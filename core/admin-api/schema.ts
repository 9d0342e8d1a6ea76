/** The `admin.tokens` block of the config schema (core/config/schema.ts includes it). */
export const ADMIN_TOKENS = {
  type: 'array',
  default: [],
  description: 'Bearer tokens of the admin API, stored hashed. None: the API is read-only and answers only loopback clients.',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'sha256'],
    properties: {
      name: { type: 'string', description: 'Who holds the token (shown in the log of each change).' },
      sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the token, 64 lower-case hex digits (`printf %s "$TOKEN" | sha256sum`).' },
      tenant: { type: 'string', description: 'Limit the token to this tenant: it sees and changes only that tenant. Absent: an operator token.' },
    },
  },
} as const;

// intra-tenant: a plugin replaces JSON.stringify (and JSON.parse, Object.keys) everywhere it
// can reach. Regression: a later plugin of the same tenant encoded its data with the
// attacker's function.
import { describeIntraTenantPatch } from './intra-tenant-helpers.ts';

describeIntraTenantPatch('intra-tenant: JSON.stringify patched by another plugin', `
  g.JSON.stringify = () => '"poisoned"';
  g.JSON.parse = () => ({ poisoned: true });
  g.Object.keys = () => ['poisoned'];
`);

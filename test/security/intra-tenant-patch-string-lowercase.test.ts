// intra-tenant: a plugin replaces String.prototype.toLowerCase (and the TypeError
// constructor) everywhere it can reach. Regression: a later plugin of the same tenant
// compared header names with the attacker's function.
import { describeIntraTenantPatch } from './intra-tenant-helpers.ts';

describeIntraTenantPatch('intra-tenant: String.prototype.toLowerCase patched by another plugin', `
  g.String.prototype.toLowerCase = function () { return 'poisoned'; };
  g.TypeError = function () {};
`);

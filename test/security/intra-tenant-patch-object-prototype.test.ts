// intra-tenant: a plugin plants properties and accessors on Object.prototype (and replaces
// Array.prototype.includes) everywhere it can reach. Regression: a later plugin of the same
// tenant saw the planted values in every object it made.
import { describeIntraTenantPatch } from './intra-tenant-helpers.ts';

describeIntraTenantPatch('intra-tenant: Object.prototype polluted by another plugin', `
  g.Object.prototype.polluted = 'yes';
  g.Object.defineProperty(g.Object.prototype, 'host', { configurable: true, get() { return 'poisoned'; } });
  g.Array.prototype.includes = () => false;
`);

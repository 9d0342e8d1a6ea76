// intra-tenant: a plugin replaces Array.prototype.push (and map, and Array.isArray) with
// functions that throw, everywhere it can reach. Regression: plugins of one tenant shared
// one global object, so every later plugin of the tenant broke; each plugin module now has
// a context of its own.
import { describeIntraTenantPatch } from './intra-tenant-helpers.ts';

describeIntraTenantPatch('intra-tenant: Array.prototype.push patched by another plugin', `
  g.Array.prototype.push = function () { throw new Error('poisoned push'); };
  g.Array.prototype.map = function () { return ['poisoned']; };
  g.Array.isArray = () => false;
`);

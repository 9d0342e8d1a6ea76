// cpu: a self-renewing microtask flood queued by a handler that returns at once
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { const spin = () => { Promise.resolve().then(spin); Promise.resolve().then(spin); }; spin(); }
`);

describeCpuAttack(`cpu: a self-renewing microtask flood queued by a handler that returns at once`, EVIL);

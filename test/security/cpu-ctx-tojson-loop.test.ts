// cpu: a loop in toJSON of a pdk.ctx value, run by the runtime's encode() after the plugin deadline was cleared
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { pdk.ctx.set("k", { toJSON() { for (;;) {} } }); }
`);

describeCpuAttack(`cpu: a loop in toJSON of a pdk.ctx value, run by the runtime's encode() after the plugin deadline was cleared`, EVIL);

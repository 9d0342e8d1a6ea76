// cpu: a loop in the getter of a thrown error's message (read by the runtime's describe())
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { const e = new Error("x"); Object.defineProperty(e, "message", { get() { for (;;) {} } }); throw e; }
`);

describeCpuAttack(`cpu: a loop in the getter of a thrown error's message (read by the runtime's describe())`, EVIL);

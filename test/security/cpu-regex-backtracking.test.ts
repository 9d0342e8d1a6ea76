// cpu: catastrophic regex backtracking (ReDoS)
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { /^(a+)+$/.test('a'.repeat(40) + 'b'); pdk.response.setHeader('x-done', '1'); }
`);

describeCpuAttack(`cpu: catastrophic regex backtracking (ReDoS)`, EVIL);

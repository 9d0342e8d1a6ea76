// escape: Error.prepareStackTrace hands out CallSite objects; getThis()/getFunction() of
// the runtime's frames would leak its closures (ops, the watchdog cells), and file names
// would leak host paths. (The runtime runs in a context of its own, whose frames V8 shows a
// plugin at most without function and receiver; the plugin's PDK forwarders are strict.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  const frames = [];
  Error.stackTraceLimit = Infinity;
  Error.prepareStackTrace = (err, sites) => {
    for (const s of sites) {
      let fn;
      try { fn = s.getFunction(); } catch (e) { fn = undefined; }
      frames.push({
        file: String(s.getFileName()), fn: s.getFunctionName(), thisType: typeof s.getThis(),
        fnType: typeof fn, fnSource: typeof fn === 'function' ? String(fn).slice(0, 40) : '',
        evalOrigin: String(s.getEvalOrigin()), native: s.isNative(),
      });
    }
    return 'x';
  };
  void new Error('probe').stack;
  // also from inside a PDK callback: a frame of the runtime is on the stack there
  try { pdk.request.getHeader({ toString() { void new Error().stack; return 'x'; } }); } catch {}
  try { pdk.log.info({ toJSON() { void new Error().stack; return 1; } }); } catch {}
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(frames)));
}
`);

describe('escape: Error.prepareStackTrace and CallSites', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('no runtime function or receiver and no host path is exposed through CallSites', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const frames = JSON.parse(decodeURIComponent(String(r.headers['x-probe']))) as { file: string; fn: string | null; thisType: string; fnType: string }[];
    expect(frames.length).toBeGreaterThan(2);
    for (const f of frames) {
      expect(f.file).not.toMatch(/\/tmp\/|node_modules|file:|\.ts$/);
      expect(f.file).not.toContain(process.cwd());
      if (f.file === 'isogate:runtime' || f.file === 'isogate:realm') {
        // the runtime and the plugin's PDK forwarders are strict code: their frames give out neither receiver nor function
        expect(f.fnType, `frame ${f.fn}`).toBe('undefined');
        expect(f.thisType, `frame ${f.fn}`).toBe('undefined');
      }
    }
    // The probe got as far as the runtime's gate (the plugin's PDK forwarders). The
    // runtime's own frames are of another context: V8 leaves them out of the plugin's
    // stack traces, or shows them without function and receiver (checked above).
    expect(frames.some((f) => f.file === 'isogate:realm')).toBe(true);
    await expectStillServes(lab);
  });
});

// bad return: a forged separator in the flat operation records of a call's result
// (pdk-bridge/runtime/prelude.ts opsText, sandbox/run-result.ts decodeHead). Header set/add
// operations leave the isolate as `kind SEP name SEP value` and the host reads them by
// position, so a name or value holding SEP (or a newline) must not start a record of its
// own: an operation for another header, or one under another plugin's owner marker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { decodeBatch } from '../../sandbox/async-result.ts';
import { decodeResult, SEP } from '../../sandbox/run-result.ts';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const FORGED = 'v\\x1f@\\x1f0\\x1frs.set\\x1fx-injected\\x1f1';
const EVIL = plugin(`
const CASES = {
  value: (pdk) => pdk.response.setHeader('x-a', '${FORGED}'),
  name: (pdk) => pdk.response.addHeader('x-a\\x1frs.set\\x1fx-injected', '1'),
  upstream: (pdk) => pdk.serviceRequest.setHeader('x-a', '${FORGED}'),
  newline: (pdk) => pdk.response.setHeader('x-a', 'v\\n{"x-injected":1}\\nbody'),
  headers: (pdk) => pdk.response.setHeaders({ 'x-a': ['ok', '${FORGED}'] }),
};
export function access(pdk) {
  const c = pdk.request.getQueryArg('case');
  if (c === 'log') {
    pdk.log.info('line${FORGED}');
    pdk.response.setHeader('x-after-log', 'ok');
    return;
  }
  CASES[c](pdk);
}
`);

describe('bad return: forged separators in flat operation records', () => {
  let lab: Lab;
  const upstreamSaw: string[] = []; // the headers of each request the upstream got
  beforeAll(async () => {
    lab = await startLab({
      evil: EVIL,
      memoryMb: 16,
      upstream: (req, res) => {
        upstreamSaw.push(JSON.stringify(req.headers));
        res.end('ok');
      },
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['value', 'name', 'upstream', 'newline', 'headers']) {
    it(`${c}: 500 plugin failure of the issuing plugin, reason bad_return, no injected operation takes effect`, async () => {
      const before = await failures(lab, 'bad_return', { plugin: 'evil' });
      const r = await attack(lab, `/evil?case=${c}`);
      expectPluginFailed(r);
      expect(await failures(lab, 'bad_return', { plugin: 'evil' })).toBe(before + 1);
      expect(r.headers['x-injected']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain('injected');
      expect(upstreamSaw.some((h) => h.includes('injected'))).toBe(false);
      await expectStillServes(lab);
    });
  }

  it('a log line holding separators arrives whole and injects nothing', async () => {
    const r = await send(`${lab.url}/evil?case=log`);
    expect(r.status).toBe(200);
    expect(r.headers['x-after-log']).toBe('ok');
    expect(r.headers['x-injected']).toBeUndefined();
    expect(lab.logs.some((l) => l.msg === 'line' + FORGED.replaceAll('\\x1f', SEP))).toBe(true);
  });
});

describe('the host decoder refuses forged or oversized flat results', () => {
  const decode = (s: string) => decodeResult(s, 0, 2);
  const reason = (s: string) => {
    const r = decode(s);
    return r.aborted ? r.faults[0].outcome : 'ok';
  };

  it('reads well-formed records by position', () => {
    const r = decode(`[]${SEP}@${SEP}1${SEP}rs.set${SEP}x-a${SEP}[v]${SEP}["rs.clear","x-b"]\n`);
    expect(r.aborted).toBe(false);
    expect(r.ops).toEqual([['@', 1], ['rs.set', 'x-a', '[v]'], ['rs.clear', 'x-b']]);
  });

  it('a record cut short, an unknown flat kind, a bad owner marker or a record that is not JSON: bad_return', () => {
    expect(reason(`[]${SEP}rs.set${SEP}x-a`)).toBe('bad_return');
    expect(reason(`[]${SEP}rs.set${SEP}x-a${SEP}v${SEP}`)).toBe('bad_return');
    expect(reason(`[]${SEP}sv.target${SEP}evil.example${SEP}80`)).toBe('bad_return');
    expect(reason(`[]${SEP}@${SEP}1e3`)).toBe('bad_return');
    expect(reason(`[]${SEP}@${SEP}`)).toBe('bad_return');
    expect(reason(`[]${SEP}@`)).toBe('bad_return');
    expect(reason(`[]${SEP}["rs.set","x-a"`)).toBe('bad_return');
    expect(reason(`[broken${SEP}@${SEP}0`)).toBe('bad_return');
  });

  it('more records than maxOps, or a head over maxResultBytes: too_large, before the rest is read', () => {
    expect(reason(`[]${SEP}` + `rs.set${SEP}x-a${SEP}v${SEP}`.repeat(OUTPUT_CAPS.maxOps) + `rs.set${SEP}x-a${SEP}v`)).toBe('too_large');
    expect(reason(`[]${SEP}rs.set${SEP}x-a${SEP}` + 'v'.repeat(OUTPUT_CAPS.maxResultBytes))).toBe('too_large');
  });

  it('a log batch with a forged item count or separator is refused as a whole', () => {
    expect(decodeBatch(`[\n[]\n[]`, 2, 0, 2).every((r) => !r.aborted)).toBe(true);
    expect(decodeBatch(`[\n[]\n[]\n[]`, 2, 0, 2).every((r) => r.aborted && r.faults[0].outcome === 'bad_return')).toBe(true);
    expect(decodeBatch(`[[]\n[]`, 2, 0, 2).every((r) => r.aborted && r.faults[0].outcome === 'bad_return')).toBe(true);
    expect(decodeBatch(`[\n[]${SEP}rs.set${SEP}x\n[]`, 2, 0, 2)[0].faults[0].outcome).toBe('bad_return');
  });
});

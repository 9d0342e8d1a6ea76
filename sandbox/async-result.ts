import { OUTPUT_CAPS } from './limits.ts';
import { decodeHead, decodeResult, failed, type RunResult } from './run-result.ts';
import { parseRequests, Suspended } from './suspended.ts';

/**
 * A result that is not plain (runtime/dispatcher.ts): '!' requests left unawaited, a
 * newline and the result; '?' a frame id, a newline and the requests of a suspended chain
 * (a log batch adds the waiting item's index and the results before it); '' a resume of a
 * frame the isolate does not hold.
 */
export function decodeAsync(out: string, live: object, chainId: number, phase: number, current: number, n: number, batchLength = -1): RunResult | Suspended | (RunResult | Suspended)[] {
  const nl = out.indexOf('\n');
  if (out === '') return failed('threw', -1, 'the chain to resume is not suspended in the isolate');
  if (nl < 0) return failed('bad_return', current, 'async result has the wrong shape');
  if (out.charCodeAt(0) === 33) { // '!'
    const detached = parseRequests(out.slice(1, nl), n);
    if (typeof detached === 'string') return failed('bad_return', current, detached);
    if (batchLength >= 0) {
      const rs = decodeBatch(out.slice(nl + 1), batchLength, current, n);
      return rs.length > 0 && !rs[0].aborted ? [{ ...rs[0], detached }, ...rs.slice(1)] : rs;
    }
    const r = decodeResult(out.slice(nl + 1), current, n);
    return r.aborted ? r : { ...r, detached };
  }
  if (out.charCodeAt(0) !== 63) return failed('bad_return', current, 'result has the wrong shape'); // '?'
  const frame = Number(out.slice(1, nl));
  const nl2 = out.indexOf('\n', nl + 1);
  const requests = parseRequests(nl2 < 0 ? out.slice(nl + 1) : out.slice(nl + 1, nl2), n);
  if (typeof requests === 'string' || !Number.isInteger(frame)) return failed('bad_return', current, typeof requests === 'string' ? requests : 'bad frame id');
  if (nl2 < 0) return new Suspended(frame, requests, live, chainId, phase, null);
  const nl3 = out.indexOf('\n', nl2 + 1);
  const index = Number(out.slice(nl2 + 1, nl3));
  const before = decodeBatch(out.slice(nl3 + 1), index, current, n);
  if (!Number.isInteger(index) || before.length !== index) return failed('bad_return', -1, 'log batch suspension has the wrong shape');
  return new Suspended(frame, requests, live, chainId, phase, { index, results: before });
}

/**
 * The results of a log batch's items, `count` of them, or one shared fault per item: '['
 * then, per item, a newline and its head (runtime/dispatcher.ts runBatch; a head holds no
 * raw newline), each decoded and capped as a call's own.
 */
export function decodeBatch(s: string, count: number, current: number, n: number): RunResult[] {
  const all = (r: RunResult) => Array.from({ length: count }, () => r);
  if (s.length > OUTPUT_CAPS.maxResultBytes * 4) return all(failed('too_large', current, 'log batch result too large'));
  if (s.charCodeAt(0) !== 91) return all(failed('bad_return', current, 'log batch result has the wrong shape'));
  const heads = s.length === 1 ? [] : s.slice(2).split('\n');
  if (heads.length !== count || (s.length > 1 && s.charCodeAt(1) !== 10)) return all(failed('bad_return', -1, 'log batch result has the wrong shape'));
  return heads.map((h) => h.length > OUTPUT_CAPS.maxResultBytes
    ? failed('too_large', current, `result of ${h.length} bytes exceeds ${OUTPUT_CAPS.maxResultBytes}`)
    : decodeHead(h, current, n, ''));
}

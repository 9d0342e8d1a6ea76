// In-isolate runtime: what leaves the isolate as text, made by the runtime's own encoder
// (JSON.stringify would honour a planted toJSON): a call's result (the text of a thrown
// value is describe.ts's).
import { $deadline, $keys, BODY_FILTER, bodyFrom, bodyOut, bounded, ctxRaw, ctxShared, encodeValue, instance, opCount, opsText, phase, SEP, type Out } from './prelude.ts';
import { describe } from './describe.ts';
import { ctxEncode } from './ctx.ts';

/** The runtime's encoder of plain data (prelude.ts, where operations are encoded as they are issued). */
export { encodeValue };

/** The ctx the last encode put in its result: what an early headerFilter begins with (dispatcher.ts). */
export let encodedCtx = '';

/**
 * Encodes the call's result into out.s: the faults as JSON, then, when there are
 * operations, SEP and their records (opsText, prelude.ts), a newline, then
 * pdk.ctx.shared as JSON ('' when unused), then, if response.setBody was called, a newline
 * and the body as it is. JSON never holds a raw newline, so the host splits at the first
 * two. A bodyFilter chunk set back as it came (setChunk(getChunk()), or a chain that
 * ends where it began) is not sent: the host then sends the upstream's bytes as they
 * were, byte for byte, without copying the text out and encoding it again.
 */
export function encode(faults: unknown[], out: Out): void {
  $deadline[0] = 0;
  // Untouched in this call: it leaves as it came, without a parse and an encode.
  let ctx: string | null = ctxShared === null ? ctxRaw : '';
  if (ctxShared !== null && $keys(ctxShared).length > 0) {
    try {
      ctx = bounded(ctxShared, CAPS.maxCtxBytes);
      if (ctx === null) faults[faults.length] = [instance, 'too_large', `pdk.ctx.shared encodes to more than ${CAPS.maxCtxBytes} characters`];
    } catch (e) {
      // ctx.shared holding a cycle or a BigInt: report it instead of losing the request
      faults[faults.length] = [instance, 'bad_return', 'pdk.ctx.shared is not JSON: ' + describe(e)];
    }
    if (typeof ctx !== 'string') ctx = '';
  }
  ctx = ctxEncode(ctx, faults);
  encodedCtx = ctx;
  const body = bodyOut !== null && phase === BODY_FILTER && bodyOut === bodyFrom ? null : bodyOut;
  out.s = encodeValue(faults) + (opCount === 0 ? '' : SEP + opsText) + '\n' + ctx + (body === null ? '' : '\n' + body);
}


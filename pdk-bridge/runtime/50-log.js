// In-isolate runtime: pdk.log, lines to the host logger with tenant and plugin attached.
// A line is cut at CAPS.maxLogChars and lines past CAPS.maxLogLines in one call are dropped:
// logging is not what a plugin answers with, so its caps never fail a request. Nothing is
// encoded past the cap (a huge object argument stops its encoder at the cap).
function logAt(level) {
  return function (...args) {
    if (logLines >= CAPS.maxLogLines) return;
    logLines++;
    const max = CAPS.maxLogChars;
    let msg = '';
    for (let i = 0; i < args.length && msg.length < max; i++) {
      const a = args[i];
      let s;
      if (typeof a === 'string') s = a;
      else {
        try { s = bounded(a, max); } catch { s = undefined; }
        if (s === null) s = '[value too large to log]';
        else if (typeof s !== 'string') { try { s = $String(a); } catch { s = '[value that cannot be logged]'; } }
      }
      const room = max - msg.length - (i === 0 ? 0 : 1);
      if (s.length > room) s = $apply($slice, s, [0, room < 0 ? 0 : room]);
      msg += i === 0 ? s : ' ' + s;
    }
    emit(['log', instance, level, msg], msg.length);
  };
}

const pdkLog = $freeze({
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
});

const pdk = $freeze({
  request: pdkRequest,
  serviceRequest: pdkServiceRequest,
  response: pdkResponse,
  ctx: pdkCtx,
  log: pdkLog,
  cache: pdkCache,
  counters: pdkCounters,
  crypto: pdkCrypto,
  http: pdkHttp,
});

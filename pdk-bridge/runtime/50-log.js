// In-isolate runtime: pdk.log, lines to the host logger with tenant and plugin attached.
function logAt(level) {
  return function (...args) {
    if (logLines >= MAX_LOG_LINES) return;
    logLines++;
    let msg = '';
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      let s;
      if (typeof a === 'string') s = a;
      else { try { s = $stringify(a); } catch { s = $String(a); } }
      msg += i === 0 ? s : ' ' + s;
      if (msg.length > MAX_LOG_CHARS) { msg = $apply($slice, msg, [0, MAX_LOG_CHARS]); break; }
    }
    emit(['log', instance, level, msg]);
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
});

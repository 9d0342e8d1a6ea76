// In-isolate runtime: pdk.ctx, per-request data shared between the plugins of a tenant.
// It travels with the request between phases as JSON, so it holds plain data only.
const pdkCtx = $freeze({
  /** Parsed in the realm of the first plugin that uses it in this call, then shared as it is. */
  get shared() {
    if (ctxShared === null) ctxShared = ctxRaw === '' ? $create(null) : bare(realm.parse(ctxRaw));
    return ctxShared;
  },
  get(key) { return pdkCtx.shared[str(key, 'ctx key')]; },
  set(key, value) { pdkCtx.shared[str(key, 'ctx key')] = value; },
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPluginTest, testPlugin, type PluginTest } from 'isogate/testing';

// Run by `isogate plugin test docs/examples/api-key` (and so by CI: test/core/plugin-docs-example.test.ts).
const KEY = 'k-0123456789abcdef';
const config = { keys: [KEY], key_names: ['x-api-key', 'apikey'], hide_credentials: true };

test('refuses a request without a key: 401 from the plugin, the upstream never called', async () => {
  const r = await testPlugin({ plugin: import.meta.dirname, config, request: { path: '/orders' } });
  assert.equal(r.client.status, 401);
  assert.deepEqual(r.client.json(), { message: 'No API key found in request' });
  assert.equal(r.client.headers['www-authenticate'], 'Key realm="isogate"');
  assert.equal(r.upstream, null);
});

// One gateway for several requests: startPluginTest keeps it up until stop().
let gw: PluginTest;
before(async () => {
  gw = await startPluginTest({ plugin: import.meta.dirname, config, upstream: { status: 200, body: { orders: [] } } });
});
after(() => gw.stop());

test('refuses a wrong key', async () => {
  const r = await gw.request({ headers: { 'x-api-key': 'not-the-key-at-all' } });
  assert.equal(r.client.status, 401);
  assert.deepEqual(r.client.json(), { message: 'Invalid authentication credentials' });
  assert.equal(r.upstream, null);
});

test('lets a good key through, in the second header it searches, and hides it from the upstream', async () => {
  const r = await gw.request({ method: 'POST', path: '/orders', headers: { apikey: KEY }, body: { item: 1 } });
  assert.equal(r.client.status, 200);
  assert.deepEqual(r.client.json(), { orders: [] });
  assert.equal(r.upstream?.method, 'POST');
  assert.equal(r.upstream?.body, '{"item":1}');
  assert.equal(r.upstream?.headers.apikey, undefined);
});

test('an answer from the upstream passes through as it is', async () => {
  const r = await gw.request({ headers: { 'x-api-key': KEY } }, { status: 503, body: 'down' });
  assert.equal(r.client.status, 503);
  assert.equal(r.client.body, 'down');
});

test('logs each request it let through, in the log phase, without the key', async () => {
  const r = await testPlugin({ plugin: import.meta.dirname, config, request: { path: '/a', headers: { 'x-api-key': KEY } } });
  assert.equal(r.client.status, 200);
  const line = r.logs.find((l) => l.phase === 'log');
  assert.ok(line !== undefined, 'a log line from the log phase');
  assert.equal(line.level, 'info');
  assert.match(line.msg, /^served \/a 200 \.\.\.cdef$/);
});

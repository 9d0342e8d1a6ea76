import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { parseArgs } from 'node:util';

/**
 * fastify + @fastify/http-proxy (undici underneath). With --hook, an onSend hook does what
 * one bench header plugin does, unsandboxed: read a request header, set two response headers.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' }, hook: { type: 'boolean', default: false } } });
const app = Fastify({ logger: false });
if (values.hook) {
  app.addHook('onSend', (req, reply, payload, done) => {
    const v = req.headers['x-bench'];
    const value = typeof v === 'string' ? v : 'none';
    reply.header('x-bench-1-access', value);
    reply.header('x-bench-1-filter', value);
    done(null, payload);
  });
}
await app.register(proxy, { upstream: values.upstream! });
await app.listen({ port: Number(values.port), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

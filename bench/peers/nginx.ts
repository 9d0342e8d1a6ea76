import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * nginx proxy_pass with a keep-alive upstream, one worker: the C floor. Returns the args to
 * run it. `workers` > 0: a master and that many workers, each on its own `reuseport`
 * socket (the multi-core reference: Isogate's workers listen the same way).
 */
/**
 * The lines every nginx peer's config shares (this one and openresty.ts): logs, pid, events,
 * and the head of the http block with its temp folders under `dir`; the http block stays open.
 */
export function nginxCommon(dir: string): string {
  return `error_log stderr error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 1000000;`;
}

export function nginxConfig(dir: string, port: number, upstreamPort: number, workers = 0): { cmd: string; args: string[] } {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# written by bench/peers/nginx.ts
daemon off;
master_process ${workers > 0 ? 'on' : 'off'};
worker_processes ${Math.max(1, workers)};
${nginxCommon(dir)}
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${workers > 0 ? ' reuseport' : ''};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 16 16k;
    }
  }
}
`,
  );
  return { cmd: 'nginx', args: ['-p', dir, '-c', conf] };
}

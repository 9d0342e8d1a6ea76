import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nginxCommon } from './nginx.ts';

/**
 * OpenResty's shape from Debian's parts: nginx + lua-nginx-module (libnginx-mod-http-lua,
 * LuaJIT), running the bench header plugin (bench/plugins/header.ts) in Lua. One nginx,
 * one worker, the same keep-alive upstream block as bench/peers/nginx.ts; one exact-match
 * location per chain length (`/o0`, `/o1`, `/o5`, `/o10`). Each plugin is its own chunk
 * loaded once at start (its own function prototypes, as separate plugin files are), run
 * Kong's way: the location's phase handler walks the chain calling `handler.access(conf)`,
 * then `handler.header_filter(conf)`. `/o0` runs no Lua at all: the first plugin's cost
 * includes installing the phase handlers, as Isogate's first plugin includes its crossings.
 */
export const OPENRESTY_CHAINS = [0, 1, 5, 10] as const;
export const openrestyPath = (n: number) => `/o${n}`;

// Debian, then the usual other places; ndk_http_module is loaded first when present
// (Debian's lua module is built against it).
const MODULE_DIRS = ['/usr/lib/nginx/modules', '/usr/share/nginx/modules', '/usr/lib64/nginx/modules', '/usr/local/nginx/modules', '/etc/nginx/modules'];

function luaModules(): string[] | null {
  for (const dir of MODULE_DIRS) {
    const lua = join(dir, 'ngx_http_lua_module.so');
    if (!existsSync(lua)) continue;
    const ndk = join(dir, 'ndk_http_module.so');
    return existsSync(ndk) ? [ndk, lua] : [lua];
  }
  return null;
}

// The plugin, as a Kong plugin's handler would be written: conf is the plugin's config,
// the header name is built per request as the TypeScript plugin builds it.
const PLUGIN_LUA = `
local conf = ...
local handler = {}
function handler.access(conf)
  local v = ngx.var.http_x_bench
  ngx.header["x-bench-" .. conf.n .. "-access"] = v or "none"
end
function handler.header_filter(conf)
  local v = ngx.var.http_x_bench
  ngx.header["x-bench-" .. conf.n .. "-filter"] = v or "none"
end
return { handler = handler, conf = conf }
`;

function config(dir: string, port: number, upstreamPort: number, modules: readonly string[]): string {
  const max = Math.max(...OPENRESTY_CHAINS);
  const locations = OPENRESTY_CHAINS.map((n) => {
    const lua =
      n === 0
        ? ''
        : `
      access_by_lua_block {
        local chain = require("bench_chains")[${n}]
        for i = 1, #chain do local p = chain[i]; p.handler.access(p.conf) end
      }
      header_filter_by_lua_block {
        local chain = require("bench_chains")[${n}]
        for i = 1, #chain do local p = chain[i]; p.handler.header_filter(p.conf) end
      }`;
    return `
    location = ${openrestyPath(n)} {${lua}
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 16 16k;
    }`;
  }).join('');
  return `# written by bench/peers/openresty.ts
${modules.map((m) => `load_module ${m};`).join('\n')}
daemon off;
master_process off;
worker_processes 1;
${nginxCommon(dir)}
  init_by_lua_block {
    local src = [==[${PLUGIN_LUA}]==]
    local plugins = {}
    for i = 1, ${max} do plugins[i] = assert(loadstring(src, "=bench-header-" .. i))({ n = i }) end
    local chains = {}
    for _, n in ipairs({ ${OPENRESTY_CHAINS.join(', ')} }) do
      local c = {}
      for i = 1, n do c[i] = plugins[i] end
      chains[n] = c
    end
    package.loaded.bench_chains = chains
  }
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};${locations}
  }
}
`;
}

/**
 * Writes the config and checks it with `nginx -t` (which binds nothing). Returns the command
 * to run it, or why the peer cannot run here (no nginx, no lua module, or nginx refuses the
 * config): the bench skips the peer with that reason and goes on.
 */
export function openrestyConfig(dir: string, port: number, upstreamPort: number, nginx: string | null): { cmd: string; args: string[] } | { skip: string } {
  if (nginx === null) return { skip: 'nginx is not on the PATH' };
  const modules = luaModules();
  if (modules === null) return { skip: `lua-nginx-module is not installed (no ngx_http_lua_module.so in ${MODULE_DIRS.join(', ')}; Debian: libnginx-mod-http-lua)` };
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, upstreamPort, modules));
  const args = ['-p', dir, '-c', conf];
  const t = spawnSync(nginx, ['-t', '-q', ...args], { encoding: 'utf8' });
  if (t.status !== 0) return { skip: `nginx refuses the lua config: ${(t.stderr || t.stdout || `exit ${t.status}`).trim().split('\n')[0].slice(0, 200)}` };
  return { cmd: nginx, args };
}

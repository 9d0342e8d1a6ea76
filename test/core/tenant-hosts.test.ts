import { describe, expect, it } from 'vitest';
import { TenantHosts } from '../../core/router/tenant-hosts.ts';

/** Which tenant owns a host, for requests no route matched as received (core/rewrite-first.ts). */
const route = (tenant: string, hosts: string[] | null) => ({ tenant, hosts, paths: ['/x'], methods: null });

describe('TenantHosts: the tenant a host names before routing', () => {
  const stages = new Map([['a', 'stage-a'], ['b', 'stage-b'], ['c', 'stage-c']]);
  const hosts = new TenantHosts(
    [
      route('a', ['api.a.example', '*.a.example']),
      route('b', ['api.b.example', 'shared.example']),
      route('c', ['shared.example', '*.deep.a.example']),
      route('d', ['d.example']), // a tenant without a rewrite stage
      route('b', null),
    ],
    (t) => stages.get(t) ?? null,
  );

  it('an exact host, case and port aside, names its one tenant', () => {
    expect(hosts.owner('API.A.example:8000')).toBe('stage-a');
    expect(hosts.owner('api.b.example')).toBe('stage-b');
  });

  it('the most specific wildcard wins over a shorter one', () => {
    expect(hosts.owner('x.a.example')).toBe('stage-a');
    expect(hosts.owner('x.deep.a.example')).toBe('stage-c');
  });

  it('a host shared by two tenants names none, and does not fall through to a less specific key', () => {
    expect(hosts.owner('shared.example')).toBeNull();
  });

  it('a host of a tenant without rewrite handlers names no stage', () => {
    expect(hosts.owner('d.example')).toBeNull();
  });

  it('an unknown host, or none, goes to the one tenant with host-less routes', () => {
    expect(hosts.owner('unknown.example')).toBe('stage-b');
    expect(hosts.owner(undefined)).toBe('stage-b');
    const two = new TenantHosts([route('a', null), route('b', null)], (t) => stages.get(t) ?? null);
    expect(two.owner('unknown.example')).toBeNull();
  });
});

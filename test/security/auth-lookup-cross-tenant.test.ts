// auth lookups: tenant evil asks the host for tenant good's consumers and credentials by
// every handle it could know (ids, usernames, keys, credential ids). The host reads only
// the index of evil's own route: nothing of good is found, no password or signature of
// good's credentials is checked, and evil's own lookups still work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.ts';
import { lookupPlugin, startLookupLab, type LookupLab } from './auth-lookup-helpers.ts';

const EVIL = lookupPlugin(`
export async function access(pdk: any) {
  const c = pdk.client;
  const tries: Record<string, unknown> = {};
  const t = async (k: string, p: Promise<unknown>) => { try { tries[k] = await p; } catch (e: any) { tries[k] = 'error: ' + e.message; } };
  await t('byId', c.loadConsumer('c-victim'));
  await t('byName', c.loadConsumer('victim', true));
  await t('key', c.findCredential('key-auth', 'victim-key'));
  await t('basic', c.findCredential('basic-auth', 'victim'));
  await t('jwt', c.findCredential('jwt', 'victim-iss'));
  await t('groups', c.getConsumerGroups('c-victim'));
  await t('password', c.verifyPassword('b-victim', 'good-pass'));
  await t('signature', c.verifyCredentialSignature('j-victim', 'HS256', 'a.b', 'c'));
  await t('own', c.findCredential('key-auth', 'mallory-key'));
  await t('ownGroups', c.getConsumerGroups('c-mallory'));
  await t('ownByName', c.loadConsumer('mallory', true));
  await t('ownNameNoFlag', c.loadConsumer('mallory'));
  await t('ownPassword', c.verifyPassword('b-mallory', 'evil-pass'));
  pdk.response.exit(200, tries);
}`);

describe('auth lookups: another tenant\'s consumers are never found', () => {
  let lab: LookupLab;
  beforeAll(async () => {
    lab = await startLookupLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('ids, usernames, keys and credential ids of tenant good find nothing from tenant evil', async () => {
    const r = await send(`${lab.gw.url}/evil`);
    expect(r.status).toBe(200);
    const j = r.json();
    expect(j.byId).toBeNull();
    expect(j.byName).toBeNull();
    expect(j.key).toBeNull();
    expect(j.basic).toBeNull();
    expect(j.jwt).toBeNull();
    expect(j.groups).toBeNull();
    expect(j.password).toBe(false);
    expect(j.signature).toBe('error: client.verifyCredentialSignature: no jwt credential of that id');
    // its own are found, and only the public fields come back
    expect(j.own).toEqual({ consumer: { id: 'c-mallory', username: 'mallory', customId: null, tags: [] }, credential: { id: 'k-mallory', kind: 'key-auth', consumer: { id: 'c-mallory' } } });
    expect(j.ownGroups).toEqual(['evil-group']);
    expect(j.ownByName.id).toBe('c-mallory');
    expect(j.ownPassword).toBe(true);
    expect(r.body).not.toContain('mallory-key"}');
    expect(r.body).not.toContain('scrypt$');
  });

  it('loadConsumer without byUsername does not search usernames (Kong\'s load_consumer)', async () => {
    const r = await send(`${lab.gw.url}/evil`);
    expect(r.json().ownNameNoFlag).toBeNull();
    expect(r.json().ownByName).not.toBeNull();
  });
});

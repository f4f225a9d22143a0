// The recommended use, against a stateful fake of the service on a fake clock.

import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { test } from 'node:test';

import {
  LicenseClient,
  LicenseUnavailableError,
  LicensingError,
  ServiceUnreachableError,
  SignatureError,
  ensureLicensed,
} from '../dist/index.js';
import { closedPort, fakeService, filePayload, licenseFile, signingKey, tempDir } from './helpers.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const key1 = signingKey(1);

/** A fake clock that starts at a fixed time and moves only when told. */
function fakeClock(start = Date.parse('2026-11-02T09:00:00.000Z')) {
  let now = start;
  const clock = () => now;
  clock.advance = (ms) => { now += ms; };
  return clock;
}

async function setup(t, serviceOptions = {}) {
  const clock = fakeClock();
  const service = await fakeService({ clock, ...serviceOptions });
  t.after(service.close);
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const settings = {
    serverUrl: service.url,
    tenantId: 'acme',
    licenseKey: service.licenseKey,
    publicKeys: { v1: key1.publicKey },
    cacheDir: dir,
    clock,
    fingerprint: 'fp-ann',
  };
  return { clock, service, dir, settings };
}

test('first run: activate and check out (2 calls); then the cached file (0 calls) for a day; then 1 call', async (t) => {
  const { clock, service, settings } = await setup(t);
  const first = await ensureLicensed(settings);
  assert.equal(first.source, 'online');
  assert.equal(first.calls, 2);
  assert.deepEqual(service.state.calls.map((c) => c.path), ['/v1/integration/activations', `/v1/integration/licenses/${service.licenseKey}/checkout`]);
  assert.equal(first.file.fingerprint, 'fp-ann');
  assert.ok(first.hasEntitlement('export-4k'));
  assert.equal(first.lease, null);
  assert.equal(first.heartbeats, null);
  assert.equal(first.validUntil.getTime() - clock(), 7 * DAY, 'a file asks for 7 days');
  assert.equal(service.seen[1].json.ttl_seconds, 7 * 86400);
  assert.ok(first.client instanceof LicenseClient);

  clock.advance(23 * HOUR + 59 * 60_000);
  const cached = await ensureLicensed(settings);
  assert.equal(cached.source, 'cache');
  assert.equal(cached.calls, 0);

  clock.advance(60_000);
  const refreshed = await ensureLicensed(settings);
  assert.equal(refreshed.source, 'online');
  assert.equal(refreshed.calls, 1);
  assert.equal(refreshed.file.issuedAt.getTime(), clock());
  assert.equal(service.state.calls.length, 3);
});

test('a released seat: the checkout answers NO_ACTIVATION, so activate and check out again (3 calls)', async (t) => {
  const { clock, service, settings } = await setup(t);
  await ensureLicensed(settings);
  service.state.activations.get('fp-ann').active = false; // released by the customer in the portal
  clock.advance(DAY);
  const again = await ensureLicensed(settings);
  assert.equal(again.source, 'online');
  assert.equal(again.calls, 3);
  assert.ok(service.state.activations.get('fp-ann').active);
});

test('an overdue node-locked heartbeat is revived by one heartbeat; heartbeatSeconds keeps it alive', async (t) => {
  const { clock, service, settings } = await setup(t, { heartbeatSeconds: 3600 });
  const first = await ensureLicensed({ ...settings, heartbeatSeconds: 3600 });
  t.after(() => first.stop());
  assert.ok(first.heartbeats.running);
  assert.equal(first.heartbeats.intervalMs, 1200_000, 'a third of heartbeat_seconds');
  assert.equal(first.heartbeats.activationId, first.file.activationId);
  first.stop();
  assert.equal(first.heartbeats.running, false);
  clock.advance(DAY); // no heartbeat for a day: HEARTBEAT_DEAD
  const revived = await ensureLicensed(settings);
  assert.equal(revived.source, 'online');
  assert.deepEqual(service.state.calls.slice(2).map((c) => c.path.replace(/act_\w+/, 'ID')), [
    `/v1/integration/licenses/${service.licenseKey}/checkout`,
    '/v1/integration/activations',
    `/v1/integration/licenses/${service.licenseKey}/checkout`,
    '/v1/integration/activations/ID/heartbeat',
    `/v1/integration/licenses/${service.licenseKey}/checkout`,
  ]);
  assert.equal(revived.heartbeats, null, 'no heartbeats unless heartbeatSeconds is given');
});

test('unreachable: licensed offline from the cached file while it is valid, then not', async (t) => {
  const { clock, service, settings } = await setup(t);
  await ensureLicensed(settings);
  clock.advance(2 * DAY);
  service.state.down = true;
  const offline = await ensureLicensed(settings);
  assert.equal(offline.source, 'offline');
  assert.ok(offline.unreachable instanceof ServiceUnreachableError);
  assert.equal(offline.calls, 1);
  // A closed port too.
  const closed = await ensureLicensed({ ...settings, serverUrl: await closedPort() });
  assert.equal(closed.source, 'offline');
  clock.advance(5 * DAY); // 7 days after issue: the file has expired
  await assert.rejects(ensureLicensed(settings), ServiceUnreachableError);
});

test('rate limited (a signed 429): the cached file while it is valid, and the file is kept', async (t) => {
  const { clock, service, settings, dir } = await setup(t);
  await ensureLicensed(settings);
  clock.advance(DAY);
  service.state.rateLimited = true;
  const limited = await ensureLicensed(settings);
  assert.equal(limited.source, 'offline');
  assert.equal(limited.unreachable.code, 'RATE_LIMITED');
  assert.equal(limited.unreachable.status, 429);
  assert.equal((await readdir(dir)).length, 1);
  clock.advance(6 * DAY);
  await assert.rejects(ensureLicensed(settings), (e) => e.code === 'RATE_LIMITED');
  assert.equal((await readdir(dir)).length, 1, 'a rate limit is no refusal: the file stays');
});

test('unreachable on the first run: not licensed', async (t) => {
  const { service, settings, dir } = await setup(t);
  service.state.down = true;
  await assert.rejects(ensureLicensed(settings), (e) => e instanceof ServiceUnreachableError && e.status === 503);
  assert.deepEqual(await readdir(dir), []);
});

test('a verified refusal is not licensed and removes the cached file; an unverified answer keeps it', async (t) => {
  const { clock, service, settings, dir } = await setup(t);
  const first = await ensureLicensed(settings);
  clock.advance(DAY);
  // A man in the middle (or anything unsigned): an error, never the file, and the file stays.
  const other = await ensureLicensed({ ...settings, publicKeys: { v1: signingKey(7).publicKey } }).catch((e) => e);
  assert.ok(other instanceof SignatureError, String(other));
  assert.equal((await readdir(dir)).length, 1);
  service.state.status = 'cancelled';
  await assert.rejects(ensureLicensed(settings), (e) => e instanceof LicensingError && e.code === 'LICENSE_NOT_ACTIVE' && e.status === 403);
  assert.deepEqual(await readdir(dir), [], 'the cached file is gone');
  service.state.down = true;
  await assert.rejects(ensureLicensed(settings), ServiceUnreachableError, 'and cannot be used offline');
  assert.ok(first.file);
});

test('no seat free: LicenseUnavailableError', async (t) => {
  const { service, settings } = await setup(t, { seats: 1 });
  await ensureLicensed(settings);
  await assert.rejects(ensureLicensed({ ...settings, fingerprint: 'fp-bob' }), (e) => e instanceof LicenseUnavailableError && e.limit === 1);
  assert.equal(service.state.activations.get('fp-bob'), undefined);
});

test('a cached file for another machine or license is not used, and is replaced', async (t) => {
  const { clock, settings, dir, service } = await setup(t);
  const client = new LicenseClient(settings);
  await writeFile(client.cachePath, licenseFile(filePayload({ issuedAt: clock(), key: service.licenseKey, fingerprint: 'fp-other' }), key1));
  const licensed = await ensureLicensed(settings);
  assert.equal(licensed.source, 'online');
  assert.equal(licensed.calls, 3, 'a checkout (NO_ACTIVATION), an activation, a checkout');
  assert.equal((await readdir(dir)).length, 1);
  assert.equal((await client.offlineLicense({ fingerprint: 'fp-ann' })).fingerprint, 'fp-ann');
  // Garbage in the cache is no file at all.
  await writeFile(client.cachePath, 'garbage');
  clock.advance(DAY);
  assert.equal((await ensureLicensed(settings)).calls, 1);
});

test('floating: a lease on every start, renewed in the background; the file still once a day', async (t) => {
  const { clock, service, settings } = await setup(t, { floating: true, leaseSeconds: 900 });
  const first = await ensureLicensed({ ...settings, floating: true });
  t.after(() => first.client.close());
  assert.equal(first.source, 'online');
  assert.equal(first.calls, 2);
  assert.ok(first.lease.running);
  assert.equal(first.lease.intervalMs, 300_000);
  await first.lease.return();
  assert.equal(service.state.activations.get('fp-ann').active, false);
  clock.advance(HOUR);
  const second = await ensureLicensed({ ...settings, floating: true });
  t.after(() => second.client.close());
  assert.equal(second.source, 'cache');
  assert.equal(second.calls, 1, 'the lease only');
  assert.ok(second.lease.running);
  second.stop();
  assert.equal(second.lease.running, false);
});

test('floating without saying so: the lease the activation turned out to be is kept alive', async (t) => {
  const { settings } = await setup(t, { floating: true, leaseSeconds: 600 });
  const first = await ensureLicensed(settings);
  t.after(() => first.client.close());
  assert.ok(first.lease);
  assert.equal(first.lease.intervalMs, 200_000);
});

test('the client method is the same entry point', async (t) => {
  const { settings } = await setup(t);
  const client = new LicenseClient(settings);
  const licensed = await client.ensureLicensed({ fingerprint: 'fp-ann' });
  assert.equal(licensed.calls, 2);
  assert.equal((await client.ensureLicensed({ fingerprint: 'fp-ann' })).calls, 0);
  await assert.rejects(client.ensureLicensed({ fingerprint: '' }), (e) => e.code === 'CONFIG');
  const noCache = new LicenseClient({ ...settings, cacheDir: undefined });
  await assert.rejects(noCache.ensureLicensed({ fingerprint: 'fp-ann' }), (e) => e.code === 'CONFIG');
});

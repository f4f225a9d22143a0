// Live tests against a running service (the dev server): LICENSING_BASE_URL, LICENSING_TENANT_ID,
// LICENSING_ADMIN_KEY (scope admin), LICENSING_INTEGRATION_KEY, LICENSING_PUBLIC_KEY_V1. They make
// their own product, policies and licenses (names unique to the run) through the Management API.
// Skipped, saying so, when LICENSING_BASE_URL is not set.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import {
  LicenseClient,
  LicenseUnavailableError,
  LicensingError,
  ServiceUnreachableError,
  SignatureError,
  ensureLicensed,
  verifyLicenseFile,
} from '../dist/index.js';
import { closedPort, tempDir } from './helpers.js';

const env = process.env;
const BASE = env.LICENSING_BASE_URL;
const SKIP = BASE ? false : 'LICENSING_BASE_URL is not set: no service to test against (see clients/node/README.md)';

const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** A Management API call with the admin key; the answer's data, or throws. */
async function manage(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { 'x-api-key': env.LICENSING_ADMIN_KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json.data;
}

async function issue(policy) {
  return manage('POST', '/v1/manage/licenses', { policy: policy.id, customer_email: `node-${RUN}@example.com` });
}

/**
 * A man in the middle: forwards every request to `upstream`, rewriting JSON bodies as `rewrite`
 * says, and passes the genuine (correctly signed) answer back unchanged.
 */
async function startProxy(upstream) {
  const proxy = { rewrite: 'nothing', rewritten: 0, forwarded: 0 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let body = Buffer.concat(chunks);
      let parsed = null;
      try {
        parsed = body.length ? JSON.parse(body.toString('utf8')) : null;
      } catch {
        parsed = null;
      }
      if (parsed && typeof parsed === 'object') {
        let changed = false;
        if (proxy.rewrite === 'drop-scope') {
          for (const field of ['fingerprint', 'product', 'entitlements']) {
            if (field in parsed) {
              delete parsed[field];
              changed = true;
            }
          }
        } else if (proxy.rewrite === 'swap-fingerprint' && typeof parsed.fingerprint === 'string' && parsed.fingerprint !== 'mitm-box') {
          parsed.fingerprint = 'mitm-box';
          changed = true;
        }
        if (changed) {
          body = Buffer.from(JSON.stringify(parsed), 'utf8');
          proxy.rewritten += 1;
        }
      }
      proxy.forwarded += 1;
      const headers = { ...req.headers };
      delete headers.host;
      delete headers['content-length'];
      const answer = await fetch(`${upstream}${req.url}`, {
        method: req.method,
        headers,
        body: ['GET', 'HEAD'].includes(req.method) ? undefined : body,
        redirect: 'manual',
      });
      const out = {};
      answer.headers.forEach((value, name) => {
        if (!['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(name)) out[name] = value;
      });
      const bytes = Buffer.from(await answer.arrayBuffer());
      res.writeHead(answer.status, out);
      res.end(bytes);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); });
  return proxy;
}

describe('live, against the service', { skip: SKIP }, () => {
  let publicKeys;
  let product;
  let nodeLocked;
  let floating;
  let cleanups = [];

  const client = (licenseKey, extra = {}) =>
    new LicenseClient({ serverUrl: BASE, tenantId: env.LICENSING_TENANT_ID, licenseKey, publicKeys, ...extra });

  before(async () => {
    for (const name of ['LICENSING_TENANT_ID', 'LICENSING_ADMIN_KEY', 'LICENSING_INTEGRATION_KEY', 'LICENSING_PUBLIC_KEY_V1']) {
      assert.ok(env[name], `${name} is set`);
    }
    // What the vendor copies into the app at build time: v1 from the settings, and every key the
    // tenant lists now (in case it was rotated).
    const listing = await (await fetch(`${BASE}/v1/public/tenants/${env.LICENSING_TENANT_ID}/signing-keys`)).json();
    publicKeys = { v1: env.LICENSING_PUBLIC_KEY_V1 };
    for (const k of listing.data.keys) publicKeys[k.kid] = k.public_key;
    assert.equal(publicKeys.v1, env.LICENSING_PUBLIC_KEY_V1, 'the listed v1 is the one in the settings');
    product = await manage('POST', '/v1/manage/products', { code: `node-${RUN}`, name: `Node client ${RUN}` });
    nodeLocked = await manage('POST', '/v1/manage/policies', {
      product: product.code,
      name: 'Node-locked',
      max_activations: 2,
      entitlements: {
        'export-4k': { type: 'boolean' },
        'api-calls': { type: 'metered', limit: 100, period: 'month', overage: 'deny' },
      },
    });
    floating = await manage('POST', '/v1/manage/policies', {
      product: product.code,
      name: 'Floating',
      max_activations: 1,
      activation_mode: 'floating',
      lease_seconds: 60,
    });
  });

  after(async () => {
    for (const cleanup of cleanups) await cleanup();
    cleanups = [];
  });

  test('validate, activate, validate again, deactivate', async () => {
    const license = await issue(nodeLocked);
    const c = client(license.key, { productId: product.code });
    const before = await c.validate({ fingerprint: 'ann-laptop' });
    assert.equal(before.code, 'NO_ACTIVATION');
    assert.equal(before.valid, false);
    const activation = await c.activate({ fingerprint: 'ann-laptop', name: 'Ann', hostname: 'ann-mbp' });
    assert.equal(activation.fingerprint, 'ann-laptop');
    assert.equal(activation.lease_expires_at, null);
    assert.equal((await c.activate({ fingerprint: 'ann-laptop' })).id, activation.id, 'the same seat');
    const v = await c.validate({ fingerprint: 'ann-laptop', entitlements: ['export-4k'] });
    assert.equal(v.code, 'VALID');
    assert.equal(v.license.key, license.key);
    assert.equal(v.license.seats.used, 1);
    assert.equal(v.license.entitlements['export-4k'], true);
    assert.equal((await c.validate({ entitlements: ['sso'] })).code, 'ENTITLEMENTS_MISSING');
    assert.equal((await client(license.key, { productId: 'another-product' }).validate()).code, 'PRODUCT_MISMATCH');
    const gone = await c.deactivate({ fingerprint: 'ann-laptop' });
    assert.equal(gone.status, 'deactivated');
    assert.equal((await c.validate({ fingerprint: 'ann-laptop' })).code, 'NO_ACTIVATION');
    assert.equal(c.requestCount, 7);
  });

  test('a node-locked heartbeat, usage records and an entitlement check', async () => {
    const license = await issue(nodeLocked);
    const c = client(license.key);
    const activation = await c.activate({ fingerprint: 'bob-desktop' });
    const { activation: beat, signedAt } = await c.heartbeat(activation.id);
    assert.equal(beat.id, activation.id);
    assert.ok(beat.last_heartbeat_at, 'the heartbeat was recorded');
    assert.ok(Math.abs(signedAt - Date.now()) < 60_000);
    const first = await c.recordUsage({ metric: 'api-calls', quantity: 5, idempotencyKey: `job-${RUN}` });
    assert.equal(first.used, 5);
    assert.equal(first.remaining, 95);
    const replay = await c.recordUsage({ metric: 'api-calls', quantity: 5, idempotencyKey: `job-${RUN}` });
    assert.equal(replay.used, 5, 'the replay counted once');
    const second = await c.recordUsage({ metric: 'api-calls', quantity: 10, metadata: { job: 'render' } });
    assert.equal(second.used, 15);
    await assert.rejects(c.recordUsage({ metric: 'api-calls', quantity: 1000 }), (e) =>
      e instanceof LicensingError && e.code === 'QUOTA_EXCEEDED' && e.status === 403 && e.details.limit === 100 && /^req_/.test(e.requestId));
    const check = await c.checkEntitlements(['export-4k', 'api-calls', 'sso']);
    assert.equal(check.license_valid, true);
    assert.equal(check.results['export-4k'].granted, true);
    assert.equal(check.results['api-calls'].used, 15);
    assert.equal(check.results.sso.granted, false);
  });

  test('a floating checkout, heartbeats and return; no seat left is LicenseUnavailableError', async () => {
    const license = await issue(floating);
    const c = client(license.key);
    cleanups.push(() => c.close());
    const lease = await c.checkout({ user: 'ann@render-7', heartbeatIntervalMs: 400 });
    assert.equal(lease.user, 'ann@render-7');
    assert.equal(lease.licenseId, license.id);
    assert.equal(lease.overage, false);
    assert.ok(lease.leaseExpiresAt.getTime() > Date.now());
    assert.ok(lease.running);
    // Automatically the interval would be a third of the 60 s lease, on the service's clock.
    const auto = await c.checkout({ user: 'ann@render-7', heartbeat: false });
    assert.equal(auto.id, lease.id, 'checking out again renews the same lease');
    assert.ok(Math.abs(auto.intervalMs - 20_000) <= 1000, String(auto.intervalMs));
    await assert.rejects(c.checkout({ user: 'bob@render-8' }), (e) =>
      e instanceof LicenseUnavailableError && e.code === 'TOO_MANY_ACTIVATIONS' && e.status === 409 && e.limit === 1);
    // The heartbeat timer is unref'd: this guard keeps the test's event loop alive meanwhile.
    const renewed = await new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error('no heartbeat within 5 s')), 5000);
      lease.once('heartbeat', (a) => { clearTimeout(guard); resolve(a); });
      lease.once('heartbeatError', (e) => { clearTimeout(guard); reject(e); });
    });
    assert.equal(renewed.id, lease.id);
    const before = lease.leaseExpiresAt.getTime();
    const manual = await lease.beat();
    assert.ok(Date.parse(manual.lease_expires_at) >= before);
    const returned = await lease.return();
    assert.equal(returned.status, 'deactivated');
    assert.equal(lease.running, false);
    // The seat is free at once; this one is returned by id.
    const bob = await c.checkout({ user: 'bob@render-8' });
    assert.equal((await c.returnLicense(bob.id)).status, 'deactivated');
    assert.equal(bob.running, false);
    // A returned lease's heartbeat: LEASE_EXPIRED, and the lease says it is lost.
    const lost = await bob.beat().catch((e) => e);
    assert.equal(lost.code, 'LEASE_EXPIRED');
    assert.equal(bob.lost, true);
  });

  test('a bound file, checked out, then verified with no service reachable', async (t) => {
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    const license = await issue(nodeLocked);
    const online = client(license.key, { cacheDir: dir });
    await assert.rejects(online.checkoutFile({ fingerprint: 'carl-pc' }), (e) => e.code === 'NO_ACTIVATION' && e.status === 409);
    await online.activate({ fingerprint: 'carl-pc' });
    const file = await online.checkoutFile({ fingerprint: 'carl-pc', ttlSeconds: 7200 });
    assert.equal(file.fingerprint, 'carl-pc');
    assert.equal(file.license.key, license.key);
    assert.equal(file.tenantId, env.LICENSING_TENANT_ID);
    assert.ok(Math.abs(file.validUntil.getTime() - file.issuedAt.getTime() - 7200_000) < 1000);
    assert.ok(file.hasEntitlement('export-4k'));
    assert.equal((await readdir(dir)).length, 1);

    const offline = client(license.key, { cacheDir: dir, serverUrl: await closedPort() });
    await assert.rejects(offline.validate({ fingerprint: 'carl-pc' }), ServiceUnreachableError);
    const verdict = await offline.validateOrOffline({ fingerprint: 'carl-pc' });
    assert.equal(verdict.online, false);
    assert.equal(verdict.file.certificate, file.certificate);
    await assert.rejects(offline.validateOrOffline({ fingerprint: 'dora-pc' }), (e) => e.reason === 'wrong_fingerprint');
    // The same check with the verifier alone, and with another tenant.
    const again = verifyLicenseFile(file.certificate, { keys: offline.keys, tenantId: env.LICENSING_TENANT_ID, fingerprint: 'carl-pc', now: Date.now() });
    assert.equal(again.activationId, file.activationId);
    assert.throws(() => verifyLicenseFile(file.certificate, { keys: offline.keys, tenantId: 'globex', now: Date.now() }), (e) => e.reason === 'wrong_tenant');
    assert.equal(offline.requestCount, 3, 'each attempt tried the service first');
  });

  test('the recommended use: 2 calls the first time, then none; offline when unreachable', async (t) => {
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    const license = await issue(nodeLocked);
    const settings = { serverUrl: BASE, tenantId: env.LICENSING_TENANT_ID, licenseKey: license.key, publicKeys, cacheDir: dir, fingerprint: 'erin-laptop' };
    const first = await ensureLicensed(settings);
    assert.equal(first.source, 'online');
    assert.equal(first.calls, 2);
    assert.ok(first.hasEntitlement('api-calls'));
    const second = await ensureLicensed(settings);
    assert.equal(second.source, 'cache');
    assert.equal(second.calls, 0);
    // A day later (the clock moved on), the file is refreshed with one call.
    const tomorrow = await ensureLicensed({ ...settings, clock: () => Date.now() + 86_400_000, checkAnswerDates: false });
    assert.equal(tomorrow.source, 'online');
    assert.equal(tomorrow.calls, 1);
    const down = await ensureLicensed({ ...settings, serverUrl: await closedPort(), clock: () => Date.now() + 86_400_000 });
    assert.equal(down.source, 'offline');
    assert.ok(down.unreachable instanceof ServiceUnreachableError);
    // Suspended: the service refuses, signed; no longer licensed, and the file is gone.
    await manage('POST', `/v1/manage/licenses/${license.id}/suspend`);
    await assert.rejects(ensureLicensed({ ...settings, clock: () => Date.now() + 86_400_000, checkAnswerDates: false }), (e) =>
      e instanceof LicensingError && e.code === 'LICENSE_NOT_ACTIVE' && e.status === 403);
    assert.deepEqual(await readdir(dir), []);
  });

  test('an unknown license key and an API key', async () => {
    await assert.rejects(client(`NOPE-${RUN}`).validate(), (e) => e instanceof LicensingError && e.code === 'UNAUTHENTICATED' && e.status === 401);
    const license = await issue(nodeLocked);
    const backend = new LicenseClient({ serverUrl: BASE, tenantId: env.LICENSING_TENANT_ID, apiKey: env.LICENSING_INTEGRATION_KEY, publicKeys });
    const v = await backend.validate({ licenseKey: license.key });
    assert.equal(v.code, 'VALID');
    // Another tenant's pinned keys: nothing verifies.
    const stranger = client(license.key, { publicKeys: { v1: 'cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=' } });
    await assert.rejects(stranger.validate(), SignatureError);
  });

  test('a man in the middle who rewrites the request is refused; the same proxy left honest is not', async (t) => {
    const proxy = await startProxy(BASE);
    t.after(proxy.close);
    const license = await issue(nodeLocked);
    const app = client(license.key, { serverUrl: proxy.url, productId: product.code });
    const direct = client(license.key);

    // Honest: everything through the proxy verifies.
    assert.equal((await app.validate({ fingerprint: 'ann-laptop' })).code, 'NO_ACTIVATION');
    await app.activate({ fingerprint: 'ann-laptop', name: 'Ann' });
    assert.equal((await app.validate({ fingerprint: 'ann-laptop' })).code, 'VALID');
    assert.equal((await app.checkoutFile({ fingerprint: 'ann-laptop' })).fingerprint, 'ann-laptop');
    assert.equal(proxy.rewritten, 0);
    assert.equal(proxy.forwarded, 4);

    // Dropping what scopes the question: the service answers the easier one, genuinely signed,
    // and the client refuses it because it is not the answer to what it sent.
    const refused = async (what, promise) =>
      assert.rejects(promise, (e) => {
        assert.ok(e instanceof SignatureError, `${what}: ${e}`);
        assert.match(e.message, /does not verify/, what);
        return true;
      });
    proxy.rewrite = 'drop-scope';
    await refused('validate of a machine never activated', app.validate({ fingerprint: 'bob-desktop' }));
    await refused('validate for another product', client(license.key, { serverUrl: proxy.url, productId: 'another-product' }).validate({ fingerprint: 'ann-laptop' }));
    await refused('checkout of a bound file', app.checkoutFile({ fingerprint: 'ann-laptop' }));
    await refused('activate', app.activate({ fingerprint: 'bob-desktop' }));
    await refused('deactivate', app.deactivate({ fingerprint: 'ann-laptop' }));
    assert.equal(proxy.rewritten, 5, 'every one of them was rewritten');
    // The service did answer what it was asked: without the fingerprint the license is VALID.
    assert.equal((await direct.validate()).code, 'VALID');

    // Another machine's fingerprint on activation: the seat goes to that machine, and the app is
    // not told its own machine is active.
    proxy.rewrite = 'swap-fingerprint';
    await refused('activate', app.activate({ fingerprint: 'carl-pc' }));
    await refused('validate', app.validate({ fingerprint: 'carl-pc' }));
    assert.equal(proxy.rewritten, 7);
    assert.equal((await direct.validate({ fingerprint: 'mitm-box' })).code, 'VALID', 'the swapped machine holds the seat');
    assert.equal((await direct.validate({ fingerprint: 'carl-pc' })).code, 'NO_ACTIVATION');

    // The recommended use through the rewriting proxy: refused, never licensed.
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    await assert.rejects(ensureLicensed({ serverUrl: proxy.url, tenantId: env.LICENSING_TENANT_ID, licenseKey: license.key, publicKeys, cacheDir: dir, fingerprint: 'ann-laptop' }), SignatureError);
    assert.deepEqual(await readdir(dir), []);

    // Honest again: the same calls verify.
    proxy.rewrite = 'nothing';
    assert.equal((await app.validate({ fingerprint: 'carl-pc' })).code, 'NO_ACTIVATION');
    assert.equal((await app.validate({ fingerprint: 'ann-laptop' })).code, 'VALID');
    assert.equal(proxy.rewritten, 8);
  });
});

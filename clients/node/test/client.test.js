// The client against an in-process mock that signs exactly as the contract says.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  LicenseClient,
  LicenseFileError,
  LicenseUnavailableError,
  LicensingError,
  OverageMaxExceededError,
  ServiceUnreachableError,
  SignatureError,
  cacheFileName,
} from '../dist/index.js';
import {
  closedPort,
  envelope,
  errorEnvelope,
  filePayload,
  licenseFile,
  mockServer,
  signingKey,
  tempDir,
} from './helpers.js';

const KEY = 'ABCDE-FGHIJ-KLMNO';
const key1 = signingKey(1);

function client(url, extra = {}) {
  return new LicenseClient({ serverUrl: url, tenantId: 'acme', licenseKey: KEY, publicKeys: { v1: key1.publicKey }, ...extra });
}

const validation = (valid) => ({ valid, code: valid ? 'VALID' : 'NO_ACTIVATION', detail: 'x', license: null });
const activation = (fp, extra = {}) => ({ id: 'act_1', license_id: 'lic_1', fingerprint: fp, status: 'active', lease_expires_at: null, overage: false, ...extra });

async function rejectsWith(promise, cls, check = () => true) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof cls, `${e?.name}: ${e?.message}`);
    assert.ok(e instanceof LicensingError);
    return check(e) !== false;
  });
}

test('validate sends the license key, the tenant and a fresh nonce, and verifies the answer', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(validation(true)) }));
  t.after(mock.close);
  const c = client(mock.url, { productId: 'desktop' });
  const v = await c.validate({ fingerprint: 'fp-1' });
  assert.equal(v.valid, true);
  assert.equal(v.code, 'VALID');
  await c.validate();
  const [first, second] = mock.seen;
  assert.equal(first.method, 'POST');
  assert.equal(first.path, `/v1/integration/licenses/${KEY}/validate`);
  assert.equal(first.headers.authorization, `License ${KEY}`);
  assert.equal(first.headers['x-tenant-id'], 'acme');
  assert.equal(first.headers['x-api-key'], undefined);
  assert.match(first.headers['x-nonce'], /^[0-9a-f]{64}$/);
  assert.notEqual(first.headers['x-nonce'], second.headers['x-nonce']);
  assert.equal(first.body.toString(), '{"fingerprint":"fp-1","product":"desktop"}');
  assert.equal(second.body.toString(), '{"product":"desktop"}');
  assert.equal(c.requestCount, 2);
});

test('every operation has its path, method, body and headers', async (t) => {
  const mock = await mockServer((req) => {
    if (req.path.endsWith('/usage/record')) return { status: 201, body: envelope({ metric: 'api-calls', quantity: 3, used: 3 }) };
    if (req.path.endsWith('/entitlements/check')) return { status: 200, body: envelope({ license_valid: true, code: 'VALID', results: {} }) };
    return { status: 200, body: envelope(activation('fp-1')) };
  });
  t.after(mock.close);
  const c = client(mock.url);
  await c.activate({ fingerprint: 'fp-1', name: 'Ann', hostname: 'ann-mbp', metadata: { os: 'linux' } });
  await c.deactivate({ fingerprint: 'fp-1' });
  await c.heartbeat('act_1');
  await c.returnLicense('act_1');
  const usage = await c.recordUsage({ metric: 'api-calls', quantity: 3, idempotencyKey: 'job-1', timestamp: new Date(0), metadata: { job: 'x' } });
  assert.equal(usage.used, 3);
  await c.checkEntitlements(['export-4k']);
  const seen = mock.seen.map((r) => [r.method, r.path, r.body.toString()]);
  assert.deepEqual(seen, [
    ['POST', '/v1/integration/activations', `{"license_key":"${KEY}","fingerprint":"fp-1","name":"Ann","hostname":"ann-mbp","metadata":{"os":"linux"}}`],
    ['POST', '/v1/integration/activations/deactivate', `{"license_key":"${KEY}","fingerprint":"fp-1"}`],
    ['POST', '/v1/integration/activations/act_1/heartbeat', '{}'],
    ['DELETE', '/v1/integration/activations/act_1', ''],
    ['POST', '/v1/integration/usage/record', `{"license_key":"${KEY}","metric":"api-calls","quantity":3,"timestamp":"1970-01-01T00:00:00.000Z","metadata":{"job":"x"}}`],
    ['POST', '/v1/integration/entitlements/check', `{"license_key":"${KEY}","features":["export-4k"]}`],
  ]);
  assert.equal(mock.seen[4].headers['x-idempotency-key'], 'job-1');
  assert.equal(mock.seen[3].headers['content-type'], undefined);
});

test('with an API key: X-API-Key, no license credential, the license named per call', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(validation(true)) }));
  t.after(mock.close);
  const c = new LicenseClient({ serverUrl: mock.url, tenantId: 'acme', apiKey: 'lk_acme_01ABC_secret', publicKeys: { v1: key1.publicKey } });
  await c.validate({ licenseKey: 'OTHER-LICENSE-1' });
  assert.equal(mock.seen[0].headers['x-api-key'], 'lk_acme_01ABC_secret');
  assert.equal(mock.seen[0].headers.authorization, undefined);
  assert.equal(mock.seen[0].path, '/v1/integration/licenses/OTHER-LICENSE-1/validate');
  await rejectsWith(c.validate(), LicensingError, (e) => e.code === 'CONFIG');
});

test('answers that do not verify are SignatureErrors, and nothing of them is used', async (t) => {
  let how = 'none';
  const mock = await mockServer(() => ({ status: 200, body: envelope(validation(true)), sign: how }));
  t.after(mock.close);
  const c = client(mock.url);
  for (const h of ['none', 'wrong-key', 'other-body']) {
    how = h;
    await rejectsWith(c.validate({ fingerprint: 'fp-1' }), SignatureError, (e) => e.code === 'SIGNATURE_INVALID' && e.status === 200);
  }
  how = (x) => `keyid="v1", algorithm="ed25519", signature="${Buffer.alloc(64).toString('base64')}"`;
  await rejectsWith(c.validate(), SignatureError, (e) => /version 1 is retired/.test(e.message));
});

test('an answer signed more than 5 minutes from the clock is refused, unless told not to check', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(validation(true)), date: '2020-01-01T00:00:00.000Z' }));
  t.after(mock.close);
  await rejectsWith(client(mock.url).validate(), SignatureError, (e) => /more than 5 minutes/.test(e.message));
  const lenient = client(mock.url, { checkAnswerDates: false });
  assert.equal((await lenient.validate()).valid, true);
  const skewed = client(mock.url, { clock: () => new Date('2020-01-01T00:04:00Z') });
  assert.equal((await skewed.validate()).valid, true);
});

test('verified errors carry code, status and request id; seat errors have their own classes', async (t) => {
  let reply;
  const mock = await mockServer(() => reply);
  t.after(mock.close);
  const c = client(mock.url);
  reply = { status: 403, body: errorEnvelope(403, 'LICENSE_NOT_ACTIVE', 'the license is suspended') };
  await rejectsWith(c.activate({ fingerprint: 'fp' }), LicensingError, (e) =>
    e.code === 'LICENSE_NOT_ACTIVE' && e.status === 403 && e.requestId === 'req_01ERRORERRORERRORERRORERRO' && e.message === 'the license is suspended');
  reply = { status: 409, body: errorEnvelope(409, 'TOO_MANY_ACTIVATIONS', 'all 3 seats', { limit: 3 }) };
  await rejectsWith(c.checkout({ user: 'ann' }), LicenseUnavailableError, (e) => e.limit === 3 && e.code === 'TOO_MANY_ACTIVATIONS');
  reply = { status: 409, body: errorEnvelope(409, 'LICENSE_UNAVAILABLE') };
  await rejectsWith(c.checkout({ user: 'ann' }), LicenseUnavailableError);
  reply = { status: 409, body: errorEnvelope(409, 'OVERAGE_MAX_EXCEEDED', 'contact your license admin') };
  await rejectsWith(c.checkout({ user: 'ann' }), OverageMaxExceededError, (e) => e.status === 409);
  reply = { status: 409, body: errorEnvelope(409, 'LEASE_EXPIRED') };
  await rejectsWith(c.heartbeat('act_1'), LicensingError, (e) => e.code === 'LEASE_EXPIRED' && !(e instanceof ServiceUnreachableError));
  // A signed 503 is the service's own: unreachable, with its code.
  reply = { status: 503, body: errorEnvelope(503, 'SERVICE_UNAVAILABLE') };
  await rejectsWith(c.validate(), ServiceUnreachableError, (e) => e.code === 'SERVICE_UNAVAILABLE' && e.status === 503);
  // An unsigned 5xx is a gateway's.
  reply = { status: 502, body: '<html>bad gateway</html>', sign: 'none' };
  await rejectsWith(c.validate(), ServiceUnreachableError, (e) => e.code === 'SERVICE_UNREACHABLE' && e.status === 502);
  // An unsigned 4xx is not: it could be anyone's.
  reply = { status: 403, body: errorEnvelope(403, 'LICENSE_NOT_ACTIVE'), sign: 'none' };
  await rejectsWith(c.validate(), SignatureError, (e) => e.status === 403);
  // A signed answer that is not the envelope.
  reply = { status: 200, body: 'not json' };
  await rejectsWith(c.validate(), LicensingError, (e) => e.code === 'UNEXPECTED_ANSWER');
});

test('no connection, a hang-up, a redirect', async (t) => {
  await rejectsWith(client(await closedPort()).validate(), ServiceUnreachableError, (e) => e.status === undefined && e.cause !== undefined);
  let reply = 'hangup';
  const mock = await mockServer(() => reply);
  t.after(mock.close);
  await rejectsWith(client(mock.url).validate(), ServiceUnreachableError);
  reply = { status: 307, body: '', sign: 'none', headers: { location: 'https://elsewhere.example/' } };
  await rejectsWith(client(mock.url).validate(), SignatureError, (e) => e.status === 307);
  assert.equal(mock.seen.length, 2, 'the redirect was not followed');
});

test('a timeout is unreachable', async (t) => {
  const mock = await mockServer(() => new Promise((resolve) => setTimeout(() => resolve({ status: 200, body: envelope(validation(true)) }), 500)));
  t.after(mock.close);
  await rejectsWith(client(mock.url, { timeoutMs: 50 }).validate(), ServiceUnreachableError);
});

test('a path prefix in the server URL is kept and signed', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(validation(true)) }));
  t.after(mock.close);
  await client(`${mock.url}/prod/`).validate();
  await client(`${mock.url}/prod`).validate();
  assert.equal(mock.seen[0].path, `/prod/v1/integration/licenses/${KEY}/validate`);
  assert.equal(mock.seen[1].path, mock.seen[0].path);
});

test('path segments are percent-encoded, and signed as sent', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(activation('fp')) }));
  t.after(mock.close);
  await client(mock.url).heartbeat('act/../x y');
  assert.equal(mock.seen[0].path, '/v1/integration/activations/act%2F..%2Fx%20y/heartbeat');
});

test('the settings are checked', () => {
  const base = { serverUrl: 'https://licensing.example.com', tenantId: 'acme', licenseKey: KEY, publicKeys: { v1: key1.publicKey } };
  const bad = (patch, pattern) => assert.throws(() => new LicenseClient({ ...base, ...patch }), (e) => e instanceof LicensingError && e.code === 'CONFIG' && pattern.test(e.message));
  assert.ok(new LicenseClient(base));
  assert.ok(new LicenseClient({ ...base, serverUrl: 'http://localhost:3900' }));
  assert.ok(new LicenseClient({ ...base, serverUrl: 'http://[::1]:3900' }));
  bad({ serverUrl: 'http://licensing.example.com' }, /must be https/);
  bad({ serverUrl: 'ftp://127.0.0.1' }, /must be https/);
  bad({ serverUrl: 'not a url' }, /not a URL/);
  bad({ serverUrl: 'https://x.example/?a=1' }, /query or fragment/);
  bad({ tenantId: '' }, /tenantId/);
  bad({ licenseKey: undefined }, /licenseKey/);
  bad({ licenseKey: 'with space' }, /licenseKey/);
  bad({ publicKeys: {} }, /no pinned signing key/);
  bad({ timeoutMs: 0 }, /timeoutMs/);
});

test('checkoutFile verifies the file and caches it atomically, owner-only', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const certificate = licenseFile(filePayload({ issuedAt: Date.now() - 1000, key: KEY }), key1);
  const mock = await mockServer(() => ({ status: 201, body: envelope({ certificate, issued_at: 'x', expires_at: 'y', kid: 'v1' }) }));
  t.after(mock.close);
  const c = client(mock.url, { cacheDir: `${dir}/cache` });
  const file = await c.checkoutFile({ fingerprint: 'fp-1', ttlSeconds: 7200 });
  assert.equal(file.fingerprint, 'fp-1');
  assert.equal(mock.seen[0].body.toString(), '{"fingerprint":"fp-1","ttl_seconds":7200}');
  assert.equal(c.cachePath, `${dir}/cache/${cacheFileName('acme', KEY)}`);
  assert.match(cacheFileName('acme', KEY), /^license-[0-9a-f]{32}\.lic$/);
  assert.equal(await readFile(c.cachePath, 'utf8'), certificate);
  assert.deepEqual(await readdir(`${dir}/cache`), [cacheFileName('acme', KEY)], 'no temporary file is left');
  if (process.platform !== 'win32') assert.equal((await stat(c.cachePath)).mode & 0o777, 0o600);
  const offline = await c.offlineLicense({ fingerprint: 'fp-1' });
  assert.equal(offline.certificate, certificate);
  await assert.rejects(c.offlineLicense({ fingerprint: 'fp-2' }), (e) => e instanceof LicenseFileError && e.reason === 'wrong_fingerprint');
  await c.clearCache();
  assert.equal(await c.offlineLicense(), null);
});

test('checkoutFile refuses a file not for this machine, tenant or license, and caches nothing', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  let certificate;
  const mock = await mockServer(() => ({ status: 201, body: envelope({ certificate }) }));
  t.after(mock.close);
  const c = client(mock.url, { cacheDir: dir });
  const now = Date.now();
  for (const [payload, reason, signer] of [
    [filePayload({ issuedAt: now, key: KEY, fingerprint: 'fp-other' }), 'wrong_fingerprint', key1],
    [filePayload({ issuedAt: now, key: KEY, fingerprint: null }), 'unbound', key1],
    [filePayload({ issuedAt: now, key: 'OTHER-KEY-0001' }), 'wrong_license', key1],
    [filePayload({ issuedAt: now, key: KEY, tenant: 'globex' }), 'wrong_tenant', key1],
    [filePayload({ issuedAt: now, key: KEY }), 'bad_signature', signingKey(5)],
  ]) {
    certificate = licenseFile(payload, signer);
    await assert.rejects(c.checkoutFile({ fingerprint: 'fp-1' }), (e) => e instanceof LicenseFileError && e.reason === reason);
  }
  assert.deepEqual(await readdir(dir), []);
});

test('validateOrOffline falls back to the file only when the service is unreachable', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  let reply = { status: 200, body: envelope(validation(true)) };
  const mock = await mockServer(() => reply);
  t.after(mock.close);
  const c = client(mock.url, { cacheDir: dir });
  const online = await c.validateOrOffline({ fingerprint: 'fp-1' });
  assert.equal(online.online, true);
  assert.equal(online.valid, true);
  // Unreachable and nothing cached: the transport error.
  reply = { status: 503, body: 'x', sign: 'none' };
  await rejectsWith(c.validateOrOffline({ fingerprint: 'fp-1' }), ServiceUnreachableError);
  await c.writeCache(licenseFile(filePayload({ issuedAt: Date.now() - 1000, key: KEY }), key1));
  const offline = await c.validateOrOffline({ fingerprint: 'fp-1' });
  assert.equal(offline.online, false);
  assert.equal(offline.file.fingerprint, 'fp-1');
  // Another machine: the file's refusal.
  await assert.rejects(c.validateOrOffline({ fingerprint: 'fp-2' }), (e) => e instanceof LicenseFileError && e.reason === 'wrong_fingerprint');
  // A verified refusal, or an unverified answer, is never replaced by the file.
  reply = { status: 401, body: errorEnvelope(401, 'UNAUTHENTICATED') };
  await rejectsWith(c.validateOrOffline({ fingerprint: 'fp-1' }), LicensingError, (e) => e.code === 'UNAUTHENTICATED');
  reply = { status: 200, body: envelope(validation(true)), sign: 'wrong-key' };
  await rejectsWith(c.validateOrOffline({ fingerprint: 'fp-1' }), SignatureError);
  const down = client(await closedPort(), { cacheDir: dir });
  assert.equal((await down.validateOrOffline({ fingerprint: 'fp-1' })).online, false);
});

test('checkout holds a lease, renews it in the background, and return() gives it back', async (t) => {
  let leaseEnd = () => new Date(Date.now() + 900_000).toISOString();
  const mock = await mockServer((req) => {
    if (req.method === 'DELETE') return { status: 200, body: envelope(activation('ann', { status: 'deactivated', lease_expires_at: leaseEnd() })) };
    return { status: req.path.endsWith('/heartbeat') ? 200 : 201, body: envelope(activation('ann', { lease_expires_at: leaseEnd(), overage: true })) };
  });
  t.after(mock.close);
  const c = client(mock.url);
  t.after(() => c.close());
  // The interval is a third of the lease, measured on the service's clock.
  const auto = await c.checkout({ user: 'ann', heartbeat: false });
  assert.ok(Math.abs(auto.intervalMs - 300_000) < 2000, String(auto.intervalMs));
  assert.equal(auto.running, false);
  assert.equal(auto.id, 'act_1');
  assert.equal(auto.user, 'ann');
  assert.equal(auto.overage, true);
  assert.ok(auto.leaseExpiresAt instanceof Date);
  assert.equal(mock.seen[0].body.toString(), `{"license_key":"${KEY}","fingerprint":"ann"}`);

  const lease = await c.checkout({ user: 'ann', heartbeatIntervalMs: 40 });
  assert.equal(lease.running, true);
  const beats = [];
  lease.on('heartbeat', (a) => beats.push(a));
  await new Promise((resolve) => setTimeout(resolve, 230));
  assert.ok(beats.length >= 3, `${beats.length} heartbeats`);
  assert.ok(mock.seen.filter((r) => r.path === '/v1/integration/activations/act_1/heartbeat').length >= 3);
  const returned = await lease.return();
  assert.equal(returned.status, 'deactivated');
  assert.equal(lease.returned, true);
  assert.equal(lease.running, false);
  const sent = mock.seen.length;
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(mock.seen.length, sent, 'no heartbeat after return');
  assert.equal(mock.seen.at(-1).method, 'DELETE');
});

test('a lost lease stops its heartbeats and says so; other failures do not stop them', async (t) => {
  let reply = { status: 503, body: 'x', sign: 'none' };
  const mock = await mockServer((req) => req.path.endsWith('/heartbeat') ? reply : { status: 201, body: envelope(activation('ann', { lease_expires_at: new Date(Date.now() + 60_000).toISOString() })) });
  t.after(mock.close);
  const c = client(mock.url);
  t.after(() => c.close());
  const lease = await c.checkout({ user: 'ann', heartbeatIntervalMs: 30 });
  const failures = [];
  const lost = new Promise((resolve) => lease.on('lost', resolve));
  lease.on('heartbeatError', (e) => {
    failures.push(e);
    if (failures.length === 2) reply = { status: 409, body: errorEnvelope(409, 'LEASE_EXPIRED') };
  });
  const error = await lost;
  assert.equal(error.code, 'LEASE_EXPIRED');
  assert.ok(failures.length >= 2 && failures.every((e) => e instanceof ServiceUnreachableError));
  assert.equal(lease.lost, true);
  assert.equal(lease.running, false);
  assert.equal(lease.lastError, error);
});

test('returnLicense(id) stops that lease\'s heartbeats; close() stops them all', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(activation('ann', { lease_expires_at: new Date(Date.now() + 60_000).toISOString() })) }));
  t.after(mock.close);
  const c = client(mock.url);
  const one = await c.checkout({ user: 'ann', heartbeatIntervalMs: 1000 });
  const two = await c.checkout({ user: 'bob', heartbeatIntervalMs: 1000 });
  await c.returnLicense(one.id);
  assert.equal(one.running, false);
  assert.equal(mock.seen.at(-1).method, 'DELETE');
  c.close();
  assert.equal(two.running, false);
});

test('keepAlive heartbeats a node-locked seat at the interval given', async (t) => {
  const mock = await mockServer(() => ({ status: 200, body: envelope(activation('fp-1')) }));
  t.after(mock.close);
  const beats = client(mock.url).keepAlive('act_9', 30);
  assert.equal(beats.activation, null);
  await new Promise((resolve) => setTimeout(resolve, 110));
  beats.stop();
  assert.ok(mock.seen.length >= 2);
  assert.ok(mock.seen.every((r) => r.path === '/v1/integration/activations/act_9/heartbeat'));
  assert.equal(beats.activation.fingerprint, 'fp-1');
});

test('the heartbeat timer does not keep the process alive', async (t) => {
  const mock = await mockServer(() => ({ status: 201, body: envelope(activation('ann', { lease_expires_at: new Date(Date.now() + 3600_000).toISOString() })) }));
  t.after(mock.close);
  // A child process checks out a lease renewed every 20 minutes and must exit at once.
  const index = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  const script = `
    const { LicenseClient } = await import(${JSON.stringify(index)});
    const c = new LicenseClient({ serverUrl: ${JSON.stringify(mock.url)}, tenantId: 'acme', licenseKey: 'ABCDE-FGHIJ-KLMNO', publicKeys: { v1: ${JSON.stringify(key1.publicKey)} } });
    const lease = await c.checkout({ user: 'ann' });
    console.log(lease.running, lease.intervalMs);`;
  const started = Date.now();
  // Asynchronously: the mock answering it runs in this process.
  const child = await new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) => resolve({ status: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
  assert.equal(child.status, 0, child.stderr);
  const [running, interval] = child.stdout.trim().split(' ');
  assert.equal(running, 'true');
  assert.ok(Number(interval) > 1_000_000);
  assert.ok(Date.now() - started < 15_000);
});

// Offline license files: every check of docs/signing.md § 4, in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LicenseFileError, PinnedKeys, verifyLicenseFile } from '../dist/index.js';
import { filePayload, licenseFile, signingKey } from './helpers.js';

const NOW = Date.parse('2026-11-30T12:00:00.000Z');
const key1 = signingKey(1);
const keys = new PinnedKeys({ v1: key1.publicKey });
const payload = () => filePayload({ issuedAt: NOW - 3600_000 });
const good = licenseFile(payload(), key1);

const verify = (text, options = {}) => verifyLicenseFile(text, { keys, tenantId: 'acme', now: NOW, ...options });
const refused = (text, reason, options = {}) =>
  assert.throws(() => verify(text, options), (e) => {
    assert.ok(e instanceof LicenseFileError, String(e));
    assert.equal(e.code, 'LICENSE_FILE_INVALID');
    assert.equal(e.reason, reason, e.message);
    return true;
  });

const DOC_FILE = `-----BEGIN LICENSE FILE-----
eyJhY3RpdmF0aW9uIjp7ImZpbmdlcnByaW50IjoiOGMxZi1hbm4tbGFwdG9wIiwi
aWQiOiJhY3RfMWI3NDBmODI1YjkyZmVlNDhlOGMwMWU5NzhjZDJkZDQ1MTQzNmE2
YWYyNGU5MDI5MGFhMyJ9LCJleHBpcmVzX2F0IjoiMjAyNi0xMi0wMVQxMjowMDow
MC4wMDBaIiwiZm9ybWF0IjoibGljZW5zaW5nLWZpbGUvdjEiLCJpc3N1ZWRfYXQi
OiIyMDI2LTExLTMwVDEyOjAwOjAwLjAwMFoiLCJraWQiOiJ2MSIsImxpY2Vuc2Ui
OnsiZW50aXRsZW1lbnRzIjp7ImV4cG9ydC00ayI6eyJ0eXBlIjoiYm9vbGVhbiJ9
fSwiZXhwaXJlc19hdCI6bnVsbCwiaWQiOiJsaWNfMWI3NDBmODI1YjkyZmVlNDhl
OGMwMWU5NzhjZDJkZDQiLCJrZXkiOiJTSEQwMi1SSDZDQS1NVkNXVC1YUVhKVC1E
Q0JSMyIsInBvbGljeSI6InBvbF8wMW04NHd5cXJndG0yOG1na3MyZnh6ejZxeCIs
InByb2R1Y3QiOiJkZXNrdG9wIiwic2VhdHMiOnsibGltaXQiOjN9LCJzdGF0dXMi
OiJhY3RpdmUifSwidGVuYW50X2lkIjoiYWNtZSIsInR0bF9zZWNvbmRzIjo4NjQw
MH0.dkVYTBgqhgSYbVfvEtkDWb36d2lJf4wdpbl-Y2J95JirIfg0dLoGKV_iuvwC
P_FrLsx7YndZVzCd2NOO1rsYCg
-----END LICENSE FILE-----
`;

test('the worked example of docs/signing.md § 4 verifies', () => {
  const docKeys = new PinnedKeys({ v1: 'cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=' });
  const options = { keys: docKeys, tenantId: 'acme', fingerprint: '8c1f-ann-laptop', now: Date.parse('2026-11-30T18:00:00Z') };
  const file = verifyLicenseFile(DOC_FILE, options);
  assert.equal(file.license.key, 'SHD02-RH6CA-MVCWT-XQXJT-DCBR3');
  assert.equal(file.fingerprint, '8c1f-ann-laptop');
  assert.equal(file.activationId, 'act_1b740f825b92fee48e8c01e978cd2dd451436a6af24e90290aa3');
  assert.equal(file.validUntil.toISOString(), '2026-12-01T12:00:00.000Z');
  assert.equal(file.issuedAt.toISOString(), '2026-11-30T12:00:00.000Z');
  assert.ok(file.hasEntitlement('export-4k'));
  assert.ok(!file.hasEntitlement('sso'));
  assert.ok(!file.hasEntitlement('toString'));
  assert.equal(file.payload.ttl_seconds, 86400);
  assert.throws(() => verifyLicenseFile(DOC_FILE, { ...options, now: Date.parse('2026-12-01T12:00:00Z') }), /expired/);
});

test('a good file verifies, bound or with no fingerprint to compare', () => {
  const file = verify(good, { fingerprint: 'fp-1', licenseKey: 'ABCDE-FGHIJ-KLMNO' });
  assert.equal(file.tenantId, 'acme');
  assert.equal(file.kid, 'v1');
  assert.equal(file.certificate, good);
  assert.equal(file.license.seats.limit, 3);
  assert.ok(verify(good));
});

test('whitespace inside the armor and text around it are ignored', () => {
  const lines = good.split('\n');
  lines[1] = `  ${lines[1].slice(0, 20)} \t ${lines[1].slice(20)}`;
  const spaced = `Your license:\r\n\r\n  ${lines.join('\r\n \t')}\r\n-- thanks\r\n`;
  assert.ok(verify(spaced, { fingerprint: 'fp-1' }));
});

test('malformed files', () => {
  const body = good.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  const [p, s] = body.split('.');
  const armor = (text) => `-----BEGIN LICENSE FILE-----\n${text}\n-----END LICENSE FILE-----\n`;
  for (const text of [
    body,
    good.replace('-----END LICENSE FILE-----', ''),
    armor(p),
    armor(`${p}.${s}.x`),
    armor(`${p}.${Buffer.alloc(64).toString('base64url')}==`),
    armor(`${p}.${Buffer.alloc(63).toString('base64url')}`),
    armor(`+${p}.${s}`),
    armor(`${Buffer.from('not json').toString('base64url')}.${s}`),
    armor(`${Buffer.from('{"kid":1}').toString('base64url')}.${s}`),
    '',
  ]) {
    refused(text, 'malformed');
  }
  refused(42, 'malformed');
});

test('unknown key, tampered payload, another key', () => {
  refused(good, 'unknown_kid', { keys: new PinnedKeys({ v2: key1.publicKey }) });
  refused(licenseFile({ ...payload(), kid: 'v9' }, key1), 'unknown_kid');
  refused(good, 'bad_signature', { keys: new PinnedKeys({ v1: signingKey(2).publicKey }) });
  // Change one payload character: the signature no longer covers it.
  const lines = good.split('\n');
  const c = lines[2][5];
  lines[2] = lines[2].slice(0, 5) + (c === 'A' ? 'B' : 'A') + lines[2].slice(6);
  assert.throws(() => verify(lines.join('\n')), (e) => ['bad_signature', 'malformed'].includes(e.reason));
  // The same claims signed by another key.
  refused(licenseFile(payload(), signingKey(3)), 'bad_signature');
});

test('format, tenant, expiry, issue time', () => {
  refused(licenseFile({ ...payload(), format: 'licensing-file/v2' }, key1), 'unsupported_format');
  refused(good, 'wrong_tenant', { tenantId: 'other' });
  refused(licenseFile(filePayload({ issuedAt: NOW - 86400_000, ttl: 86400 }), key1), 'expired');
  refused(licenseFile(filePayload({ issuedAt: NOW - 3600_000, licenseExpiresAt: '2026-11-30T11:59:59Z' }), key1), 'expired');
  const perpetualSoon = verify(licenseFile(filePayload({ issuedAt: NOW - 3600_000, licenseExpiresAt: '2026-11-30T13:00:00+00:00' }), key1));
  assert.equal(perpetualSoon.validUntil.toISOString(), '2026-11-30T13:00:00.000Z');
  refused(licenseFile(filePayload({ issuedAt: NOW + 5 * 60_000 + 1000 }), key1), 'not_yet_valid');
  assert.ok(verify(licenseFile(filePayload({ issuedAt: NOW + 5 * 60_000 }), key1)));
});

test('the machine and the license', () => {
  refused(good, 'wrong_fingerprint', { fingerprint: 'fp-2' });
  const unbound = licenseFile(filePayload({ issuedAt: NOW - 1000, fingerprint: null }), key1);
  refused(unbound, 'unbound', { fingerprint: 'fp-1' });
  assert.equal(verify(unbound).fingerprint, null);
  refused(good, 'wrong_license', { licenseKey: 'ZZZZZ-ZZZZZ' });
});

test('a signed payload missing its fields is malformed', () => {
  for (const field of ['expires_at', 'issued_at', 'tenant_id', 'license']) {
    const p = payload();
    delete p[field];
    refused(licenseFile(p, key1), 'malformed');
  }
  const p = payload();
  p.issued_at = 'yesterday';
  refused(licenseFile(p, key1), 'malformed');
  const q = payload();
  q.activation = { id: 'act_1' };
  refused(licenseFile(q, key1), 'malformed');
});

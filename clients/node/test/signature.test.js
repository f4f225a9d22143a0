// Signed answers (version 2) and pinned keys.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  LicensingError,
  PinnedKeys,
  parseSignatureHeader,
  signedMessage,
  verifyAnswer,
} from '../dist/index.js';
import { _isSmallOrderEncoding } from '../dist/keys.js';
import { signatureHeader, signingKey } from './helpers.js';

const DATE = '2026-11-30T12:00:00.000Z';
const NOW = Date.parse(DATE);
const PATH = '/v1/integration/licenses/ABCDE-FGHIJ/validate';
const NONCE = '6e6f6e63652d6e6f6e6365';
const SENT = '{"fingerprint":"fp-1","product":"desktop"}';
const BODY = '{"data":{"valid":true}}';

const key1 = signingKey(1);
const keys = new PinnedKeys({ v1: key1.publicKey });
const request = { method: 'POST', pathAndQuery: PATH, tenant: 'acme', nonce: NONCE, body: SENT };
const good = signatureHeader({ key: key1, method: 'POST', path: PATH, date: DATE, nonce: NONCE, requestBody: SENT, responseBody: BODY });
const answer = { signature: good, date: DATE, body: BODY };

test('the signed message is the seven documented lines (fixed vector)', () => {
  const expected = [
    'licensing-signature-v2',
    'POST /v1/integration/licenses/ABCDE-FGHIJ/validate?x=1',
    'acme',
    '2026-11-30T12:00:00.000Z',
    'abc123',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  ].join('\n');
  const r = { method: 'post', pathAndQuery: `${PATH}?x=1`, tenant: 'acme', nonce: 'abc123', body: '' };
  assert.equal(signedMessage(r, DATE, '{}'), expected);
  const noNonce = signedMessage({ method: 'GET', pathAndQuery: '/v1/integration/x', tenant: 'acme', body: new Uint8Array(Buffer.from('{}')) }, DATE, '');
  assert.equal(noNonce.split('\n')[4], '');
  assert.equal(noNonce.split('\n')[6], 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('the worked example of docs/signing.md § 3 verifies, and not once the fingerprint is dropped', () => {
  const docKeys = new PinnedKeys({ v1: 'cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=' });
  const body = '{"data":{"code":"NOT_FOUND","detail":"No license exists with this key.","license":null,"valid":false},"meta":{"api_version":"v1","request_id":"req_01M8P9E266J9WQ7Z4N2B8C5D6E"}}';
  const sent = {
    method: 'POST',
    pathAndQuery: '/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1',
    tenant: 'acme',
    nonce: '9b1c3f0e7a2d4c8e',
    body: '{"fingerprint":"8c1f-ann-laptop"}',
  };
  const signature = 'keyid="v1", algorithm="ed25519", version="2", signature="J/Y0AqkBK7pWIgQc4tVzL+6Plk/TywqhA8mIe4OqHW+V1pytXhdUe06tSRzY2YOVPCb5+tdE5brkMLG/Jx3cDQ=="';
  assert.deepEqual(verifyAnswer(docKeys, sent, { signature, date: DATE, body }), { ok: true, kid: 'v1' });
  const rewritten = verifyAnswer(docKeys, { ...sent, body: '{}' }, { signature, date: DATE, body });
  assert.equal(rewritten.ok, false);
  assert.equal(rewritten.reason, 'bad_signature');
});

test('a good signature verifies; the method is compared upper-cased', () => {
  assert.deepEqual(verifyAnswer(keys, request, answer), { ok: true, kid: 'v1' });
  assert.equal(verifyAnswer(keys, { ...request, method: 'post' }, answer).ok, true);
  assert.equal(verifyAnswer(keys, request, { ...answer, body: Buffer.from(BODY) }).ok, true);
});

test('any changed part of the exchange fails', () => {
  const bad = (r, a = answer) => {
    const v = verifyAnswer(keys, r, a);
    assert.equal(v.ok, false, JSON.stringify(r));
    assert.equal(v.reason, 'bad_signature');
  };
  const flipped = Buffer.from(BODY);
  flipped[10] ^= 1;
  bad(request, { ...answer, body: flipped });
  bad(request, { ...answer, date: '2026-11-30T12:00:01.000Z' });
  bad({ ...request, pathAndQuery: PATH.replace('ABCDE', 'ABCDF') });
  bad({ ...request, pathAndQuery: `${PATH}?a=1` });
  bad({ ...request, nonce: '6e6f6e6366' });
  bad({ ...request, nonce: null });
  bad({ ...request, method: 'PUT' });
  bad({ ...request, tenant: 'acme2' });
  for (const other of ['{"product":"desktop"}', '{"fingerprint":"fp-1"}', '{"fingerprint":"fp-2","product":"desktop"}', '{"fingerprint":"fp-1", "product":"desktop"}', '']) {
    bad({ ...request, body: other });
  }
});

test('an unknown kid and a wrong key are refused', () => {
  const other = new PinnedKeys({ v2: key1.publicKey });
  const v = verifyAnswer(other, request, answer);
  assert.equal(v.reason, 'unknown_kid');
  assert.match(v.message, /unknown key "v1"/);
  const wrong = new PinnedKeys({ v1: signingKey(2).publicKey });
  assert.equal(verifyAnswer(wrong, request, answer).reason, 'bad_signature');
});

test('missing or malformed headers are refused', () => {
  assert.match(verifyAnswer(keys, request, { ...answer, signature: null }).message, /no X-Signature$/);
  assert.match(verifyAnswer(keys, request, { ...answer, date: undefined }).message, /no X-Signature-Date/);
  const sig = /signature="([^"]+)"/.exec(good)[1];
  for (const header of [
    '',
    'garbage',
    good.replace('ed25519', 'rsa'),
    good.replace('keyid="v1", ', ''),
    good.replace('keyid="v1"', 'keyid=v1'),
    `${good}, keyid="v1"`,
    `${good}, version="2"`,
    good.replace('version="2"', 'version="1"'),
    good.replace('version="2"', 'version="3"'),
    good.replace(', version="2"', ''),
    'keyid="v1", algorithm="ed25519", version="2", signature="AAAA"',
    'keyid="v1", algorithm="ed25519", version="2", signature="!!notbase64!!"',
    `keyid="v1", algorithm="ed25519", version="2", signature="${sig.replace(/==$/, '')}"`,
    // Non-canonical base64: the same bytes with a stray bit in the padding.
    `keyid="v1", algorithm="ed25519", version="2", signature="${sig.slice(0, -3)}${String.fromCharCode(sig.charCodeAt(sig.length - 3) ^ 1)}=="`,
    good.replace('keyid="v1"', 'keyid=""'),
    `${good}\u00e9`,
  ]) {
    const v = verifyAnswer(keys, request, { ...answer, signature: header });
    assert.equal(v.ok, false, header);
    assert.equal(v.reason, 'malformed', `${header}: ${v.message}`);
  }
  // Version 1 is retired: a header without a version is refused even when the rest verifies.
  assert.throws(() => parseSignatureHeader(good.replace(', version="2"', '')), /version 1 is retired/);
});

test('parameters in any order, names in any case, unknown ones ignored', () => {
  const sig = /signature="([^"]+)"/.exec(good)[1];
  const shuffled = `signature="${sig}", VERSION="2", extra="x", KeyId="v1",algorithm="ED25519"`;
  assert.deepEqual(parseSignatureHeader(shuffled).kid, 'v1');
  assert.equal(verifyAnswer(keys, request, { ...answer, signature: shuffled }).ok, true);
});

test('with a clock, a date more than 5 minutes away is refused as expired', () => {
  assert.equal(verifyAnswer(keys, request, answer, { now: NOW }).ok, true);
  assert.equal(verifyAnswer(keys, request, answer, { now: NOW + 5 * 60_000 }).ok, true);
  assert.equal(verifyAnswer(keys, request, answer, { now: NOW - 5 * 60_000 }).ok, true);
  assert.equal(verifyAnswer(keys, request, answer, { now: NOW + 5 * 60_000 + 1 }).reason, 'expired');
  assert.equal(verifyAnswer(keys, request, answer, { now: NOW - 5 * 60_000 - 1 }).reason, 'expired');
  assert.equal(verifyAnswer(keys, request, answer, { now: null }).ok, true);
  // A signature that does not verify is refused as such, whatever the date.
  assert.equal(verifyAnswer(keys, { ...request, tenant: 'x' }, answer, { now: NOW + 3600_000 }).reason, 'bad_signature');
  // The date is signed: one not RFC 3339 fails on the clock check once it verifies.
  const odd = 'Mon, 30 Nov 2026 12:00:00 GMT';
  const header = signatureHeader({ key: key1, method: 'POST', path: PATH, date: odd, nonce: NONCE, requestBody: SENT, responseBody: BODY });
  assert.equal(verifyAnswer(keys, request, { signature: header, date: odd, body: BODY }).ok, true);
  assert.equal(verifyAnswer(keys, request, { signature: header, date: odd, body: BODY }, { now: NOW }).reason, 'malformed');
});

test('keys: standard base64 with or without padding; anything else is a CONFIG error', () => {
  const padded = key1.publicKey;
  const pinned = new PinnedKeys({ v2: padded, v1: padded.replace(/=+$/, '') });
  assert.deepEqual(pinned.kids(), ['v1', 'v2']);
  assert.ok(pinned.has('v2'));
  const configError = (keysObject, pattern) => assert.throws(() => new PinnedKeys(keysObject), (e) => e instanceof LicensingError && e.code === 'CONFIG' && pattern.test(e.message));
  configError({}, /no pinned signing key/);
  configError(null, /publicKeys/);
  configError({ v1: 'not base64!' }, /not base64/);
  configError({ v1: Buffer.alloc(31, 7).toString('base64') }, /not a 32-byte Ed25519 public key/);
  configError({ v1: 42 }, /not a string/);
});

test('keys of small order, or not on the curve, are refused', () => {
  const hex = (h) => Buffer.from(h, 'hex');
  const smallOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];
  for (const h of smallOrder) {
    assert.ok(_isSmallOrderEncoding(hex(h)), h);
    assert.throws(() => new PinnedKeys({ v1: hex(h).toString('base64') }), /not a 32-byte Ed25519 public key/, h);
  }
  assert.equal(_isSmallOrderEncoding(Buffer.from('cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=', 'base64')), false);
  assert.equal(_isSmallOrderEncoding(Buffer.from(key1.publicKey, 'base64')), false);
  // y = 2 is not the y of any point of the curve.
  const notOnCurve = Buffer.alloc(32);
  notOnCurve[0] = 2;
  assert.throws(() => new PinnedKeys({ v1: notOnCurve.toString('base64') }), /not a 32-byte/);
  // A signature whose R is of small order never verifies.
  const sig = Buffer.concat([hex(smallOrder[1]), Buffer.alloc(32)]);
  assert.equal(keys.verify('v1', Buffer.from('x'), sig), 'no');
});

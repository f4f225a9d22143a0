// Test helpers: Ed25519 keys from fixed seeds, signing exactly as docs/signing.md says, license
// files, and an in-process mock of the service on 127.0.0.1 that signs its answers.

import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export const TENANT = 'acme';

/** An Ed25519 key from a 32-byte seed filled with `seed`. */
export function signingKey(seed) {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.alloc(32, seed)]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: spki.subarray(-32).toString('base64') };
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** The X-Signature header over one exchange. */
export function signatureHeader({ key, kid = 'v1', method, path, tenant = TENANT, date, nonce = '', requestBody, responseBody, version = '2' }) {
  const message = [
    'licensing-signature-v2',
    `${method} ${path}`,
    tenant,
    date,
    nonce,
    sha256(requestBody),
    sha256(responseBody),
  ].join('\n');
  const signature = sign(null, Buffer.from(message, 'utf8'), key.privateKey).toString('base64');
  const v = version === null ? '' : `, version="${version}"`;
  return `keyid="${kid}", algorithm="ed25519"${v}, signature="${signature}"`;
}

/** A license file payload: issued at `issuedAt`, for `ttl` seconds, bound to `fingerprint`. */
export function filePayload({ issuedAt, ttl = 86400, fingerprint = 'fp-1', key = 'ABCDE-FGHIJ-KLMNO', tenant = TENANT, kid = 'v1', licenseExpiresAt = null, entitlements = { 'export-4k': { type: 'boolean' } } }) {
  return {
    activation: fingerprint === null ? null : { fingerprint, id: `act_${sha256(fingerprint).slice(0, 20)}` },
    expires_at: new Date(issuedAt + ttl * 1000).toISOString(),
    format: 'licensing-file/v1',
    issued_at: new Date(issuedAt).toISOString(),
    kid,
    license: {
      entitlements,
      expires_at: licenseExpiresAt,
      id: 'lic_1b740f825b92fee48e8c01e978cd2dd4',
      key,
      policy: 'pol_01m84wyqrgtm28mgks2fxzz6qx',
      product: 'desktop',
      seats: { limit: 3 },
      status: 'active',
    },
    tenant_id: tenant,
    ttl_seconds: ttl,
  };
}

/** Signs `payload` with `key` and armors it (64 characters a line). */
export function licenseFile(payload, key) {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const signature = sign(null, Buffer.from(body, 'ascii'), key.privateKey).toString('base64url');
  const joined = `${body}.${signature}`;
  const lines = joined.match(/.{1,64}/g);
  return `-----BEGIN LICENSE FILE-----\n${lines.join('\n')}\n-----END LICENSE FILE-----\n`;
}

export function envelope(data) {
  return { data, meta: { request_id: 'req_01TESTTESTTESTTESTTESTTEST', api_version: 'v1' } };
}

export function errorEnvelope(status, code, message = code.toLowerCase(), extra = {}) {
  return {
    error: { code, message, type: 'x', status, ...extra },
    meta: { request_id: 'req_01ERRORERRORERRORERRORERRO', api_version: 'v1' },
  };
}

/**
 * A mock of the service. `respond(seen)` returns `{ status, body, sign }` where `sign` is
 * `'good'` (default), `'none'`, `'wrong-key'`, `'other-body'` or a function of the exchange
 * giving the header. Every request is recorded in `seen`.
 */
export async function mockServer(respond, { key = signingKey(1), kid = 'v1', clock = Date.now } = {}) {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const record = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        body,
        json: body.length ? JSON.parse(body.toString('utf8')) : undefined,
      };
      seen.push(record);
      let reply;
      try {
        reply = await respond(record);
      } catch (e) {
        reply = { status: 500, body: { error: String(e) }, sign: 'none' };
      }
      if (reply === 'hangup') {
        req.socket.destroy();
        return;
      }
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      const headers = { 'content-type': 'application/json', ...(reply.headers ?? {}) };
      const date = reply.date ?? new Date(typeof clock === 'function' ? clock() : clock).toISOString();
      const exchange = {
        key,
        kid,
        method: req.method,
        path: req.url,
        tenant: req.headers['x-tenant-id'] ?? TENANT,
        date,
        nonce: req.headers['x-nonce'] ?? '',
        requestBody: body,
        responseBody: Buffer.from(text, 'utf8'),
      };
      const how = reply.sign ?? 'good';
      if (how === 'good') {
        headers['x-signature'] = signatureHeader(exchange);
      } else if (how === 'wrong-key') {
        headers['x-signature'] = signatureHeader({ ...exchange, key: signingKey(99) });
      } else if (how === 'other-body') {
        headers['x-signature'] = signatureHeader({ ...exchange, requestBody: Buffer.from('{}') });
      } else if (typeof how === 'function') {
        headers['x-signature'] = how(exchange);
      }
      if (how !== 'none') headers['x-signature-date'] = date;
      res.writeHead(reply.status ?? 200, headers);
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    key,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/** A port on 127.0.0.1 that nothing listens on. */
export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** A temporary directory, removed by `cleanup()`. */
export async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'licensing-node-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A stateful fake of the service for the recommended use: activations (node-locked seats, or
 * floating leases), bound license files signed on the injected clock, heartbeats, deactivation.
 * `state.down` makes it answer an unsigned 503; `state.status` another license status.
 */
export async function fakeService({ clock, key = signingKey(1), licenseKey = 'ABCDE-FGHIJ-KLMNO', seats = 3, floating = false, leaseSeconds = 900, heartbeatSeconds = null, maxFileTtl = 1209600 } = {}) {
  const state = { down: false, rateLimited: false, status: 'active', activations: new Map(), calls: [] };
  const now = () => clock();
  const actId = (fp) => `act_${sha256(`${licenseKey}/${fp}`).slice(0, 40)}`;
  const held = (a) => a.active && (!floating || a.leaseExpiresAt > now())
    && !(heartbeatSeconds !== null && now() - a.lastBeat > heartbeatSeconds * 1000);
  const view = (a) => ({
    id: a.id, license_id: 'lic_1b740f825b92fee48e8c01e978cd2dd4', fingerprint: a.fingerprint,
    status: a.active ? 'active' : 'deactivated',
    lease_expires_at: floating ? new Date(a.leaseExpiresAt).toISOString() : null,
    overage: false, last_heartbeat_at: a.lastBeat ? new Date(a.lastBeat).toISOString() : null,
  });
  const mock = await mockServer((req) => {
    state.calls.push({ at: now(), method: req.method, path: req.path });
    if (state.down) return { status: 503, body: 'Service Unavailable', sign: 'none' };
    if (state.rateLimited) return { status: 429, body: errorEnvelope(429, 'RATE_LIMITED'), headers: { 'retry-after': '30' } };
    if (req.headers.authorization !== `License ${licenseKey}`) return { status: 401, body: errorEnvelope(401, 'UNAUTHENTICATED') };
    if (!req.headers['x-nonce'] || req.headers['x-nonce'].length < 16) return { status: 400, body: errorEnvelope(400, 'NONCE_REQUIRED') };
    const path = req.path;
    const body = req.json ?? {};
    if (req.method === 'POST' && path === '/v1/integration/activations') {
      if (state.status !== 'active') return { status: 403, body: errorEnvelope(403, 'LICENSE_NOT_ACTIVE') };
      const existing = state.activations.get(body.fingerprint);
      if (existing && existing.active && (!floating || existing.leaseExpiresAt > now())) {
        if (floating) existing.leaseExpiresAt = now() + leaseSeconds * 1000;
        return { status: 200, body: envelope(view(existing)) };
      }
      const taken = [...state.activations.values()].filter(held).length;
      if (taken >= seats) return { status: 409, body: errorEnvelope(409, 'TOO_MANY_ACTIVATIONS', 'all seats are in use', { limit: seats }) };
      const a = existing ?? { id: actId(body.fingerprint), fingerprint: body.fingerprint };
      a.active = true;
      a.leaseExpiresAt = now() + leaseSeconds * 1000;
      a.lastBeat = now();
      state.activations.set(body.fingerprint, a);
      return { status: 201, body: envelope(view(a)) };
    }
    let m = /^\/v1\/integration\/licenses\/([^/]+)\/checkout$/.exec(path);
    if (req.method === 'POST' && m) {
      if (state.status !== 'active') return { status: 403, body: errorEnvelope(403, 'LICENSE_NOT_ACTIVE') };
      if (!body.fingerprint) return { status: 422, body: errorEnvelope(422, 'FINGERPRINT_REQUIRED') };
      const a = state.activations.get(body.fingerprint);
      if (!a || !held(a)) return { status: 409, body: errorEnvelope(409, 'NO_ACTIVATION') };
      const ttl = Math.min(body.ttl_seconds ?? 86400, maxFileTtl);
      const payload = filePayload({ issuedAt: now(), ttl, fingerprint: body.fingerprint, key: licenseKey });
      payload.activation.id = a.id;
      const certificate = licenseFile(payload, key);
      return { status: 201, body: envelope({ certificate, issued_at: payload.issued_at, expires_at: payload.expires_at, kid: 'v1' }) };
    }
    m = /^\/v1\/integration\/activations\/([^/]+)\/heartbeat$/.exec(path);
    if (req.method === 'POST' && m) {
      const a = [...state.activations.values()].find((x) => x.id === m[1]);
      if (!a) return { status: 404, body: errorEnvelope(404, 'ACTIVATION_NOT_FOUND') };
      if (floating && (!a.active || a.leaseExpiresAt <= now())) return { status: 409, body: errorEnvelope(409, 'LEASE_EXPIRED') };
      if (!a.active) return { status: 404, body: errorEnvelope(404, 'ACTIVATION_NOT_FOUND') };
      a.lastBeat = now();
      if (floating) a.leaseExpiresAt = now() + leaseSeconds * 1000;
      return { status: 200, body: envelope(view(a)) };
    }
    m = /^\/v1\/integration\/activations\/([^/]+)$/.exec(path);
    if (req.method === 'DELETE' && m) {
      const a = [...state.activations.values()].find((x) => x.id === m[1]);
      if (!a) return { status: 404, body: errorEnvelope(404, 'ACTIVATION_NOT_FOUND') };
      a.active = false;
      return { status: 200, body: envelope(view(a)) };
    }
    if (req.method === 'POST' && path === '/v1/integration/activations/deactivate') {
      const a = state.activations.get(body.fingerprint);
      if (!a) return { status: 404, body: errorEnvelope(404, 'ACTIVATION_NOT_FOUND') };
      a.active = false;
      return { status: 200, body: envelope(view(a)) };
    }
    return { status: 404, body: errorEnvelope(404, 'ROUTE_NOT_FOUND') };
  }, { key, clock });
  return { ...mock, state, licenseKey };
}

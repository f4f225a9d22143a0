/**
 * Public keys pinned at build time, and Ed25519 verification with `node:crypto`.
 *
 * The vendor copies the tenant's keys from `GET /v1/public/tenants/{tenant_id}/signing-keys` into
 * the app when it is built; they are never fetched at run time, so a key the app does not ship
 * cannot vouch for an answer or a license file. Keep retired keys (and always `v1`) pinned.
 *
 * Verification is "strict", like the Rust client's (`verify_strict` of ed25519-dalek): besides
 * OpenSSL's checks (a canonical `S`, the re-encoded `R` equal to the one sent) a key or an `R`
 * of small order is refused, so no signature can verify for many messages at once.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { LicensingError } from './errors.js';
/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow it. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** The tenant's Ed25519 public keys, by key id (`v1`, `v2`, ...). */
export class PinnedKeys {
    #keys = new Map();
    /**
     * Pins every key of `keys` (`{ v1: "cA2/b97J...=" }`: standard base64 of the 32 raw bytes,
     * padded or not). Throws a `LicensingError` with code `CONFIG` for a key that is not a valid
     * Ed25519 public key, or when none is given.
     */
    constructor(keys) {
        if (keys === null || typeof keys !== 'object') {
            throw new LicensingError('CONFIG', 'publicKeys must be an object of { kid: base64 key }');
        }
        for (const [kid, text] of Object.entries(keys)) {
            this.#keys.set(kid, decodeKey(kid, text));
        }
        if (this.#keys.size === 0) {
            throw new LicensingError('CONFIG', 'no pinned signing key: publicKeys is empty');
        }
    }
    /** The pinned key ids, sorted. */
    kids() {
        return [...this.#keys.keys()].sort();
    }
    /** Whether a key is pinned under `kid`. */
    has(kid) {
        return this.#keys.has(kid);
    }
    /** Verifies the 64-byte `signature` over `message` with the key pinned under `kid`. */
    verify(kid, message, signature) {
        const pinned = this.#keys.get(kid);
        if (pinned === undefined) {
            return 'unknown_key';
        }
        if (signature.length !== 64) {
            return 'no';
        }
        // R must be a point, and not one of small order (the key was checked when pinned).
        const r = decompress(signature.subarray(0, 32));
        if (r === null || isSmallOrder(r)) {
            return 'no';
        }
        try {
            return cryptoVerify(null, message, pinned.key, signature) ? 'yes' : 'no';
        }
        catch {
            return 'no';
        }
    }
}
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
function decodeKey(kid, text) {
    if (typeof text !== 'string') {
        throw new LicensingError('CONFIG', `public key ${JSON.stringify(kid)} is not a string`);
    }
    const trimmed = text.trim();
    const unpadded = trimmed.replace(/=+$/, '');
    if (!BASE64.test(trimmed) || unpadded.length % 4 === 1) {
        throw new LicensingError('CONFIG', `public key ${JSON.stringify(kid)} is not base64`);
    }
    const raw = Buffer.from(unpadded, 'base64');
    const point = raw.length === 32 ? decompress(raw) : null;
    if (point === null || isSmallOrder(point)) {
        throw new LicensingError('CONFIG', `public key ${JSON.stringify(kid)} is not a 32-byte Ed25519 public key`);
    }
    const key = createPublicKey({
        key: Buffer.concat([SPKI_ED25519_PREFIX, raw]),
        format: 'der',
        type: 'spki',
    });
    return { raw, key };
}
// ---- Edwards25519 arithmetic, only to tell points of small order (BigInt; not constant time,
// ---- which is fine: every input is public).
const P = 2n ** 255n - 19n;
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);
function mod(a) {
    const r = a % P;
    return r >= 0n ? r : r + P;
}
function pow(base, exponent) {
    let result = 1n;
    let b = mod(base);
    let e = exponent;
    while (e > 0n) {
        if (e & 1n)
            result = (result * b) % P;
        b = (b * b) % P;
        e >>= 1n;
    }
    return result;
}
function inverse(a) {
    return pow(a, P - 2n);
}
/**
 * Decodes a compressed point as curve25519-dalek does: the low 255 bits are y (taken modulo p),
 * the top bit the sign of x; `null` when no x satisfies the curve equation.
 */
function decompress(bytes) {
    if (bytes.length !== 32)
        return null;
    let y = 0n;
    for (let i = 31; i >= 0; i--) {
        y = (y << 8n) | BigInt(i === 31 ? bytes[i] & 0x7f : bytes[i]);
    }
    const sign = (bytes[31] >> 7) & 1;
    y = mod(y);
    const yy = (y * y) % P;
    const u = mod(yy - 1n);
    const v = mod(D * yy + 1n);
    // x = u v^3 (u v^7)^((p-5)/8), then fix up by sqrt(-1) if needed.
    const v3 = (v * v * v) % P;
    const v7 = (v3 * v3 * v) % P;
    let x = (u * v3 % P) * pow(u * v7, (P - 5n) / 8n) % P;
    const vxx = (v * x * x) % P;
    if (vxx === u) {
        // x is a root
    }
    else if (vxx === mod(-u)) {
        x = (x * SQRT_M1) % P;
    }
    else {
        return null;
    }
    if (Number(x & 1n) !== sign) {
        x = mod(-x);
    }
    return { x, y, z: 1n, t: (x * y) % P };
}
/** 2·P (the doubling formula of "Twisted Edwards curves revisited", a = -1). */
function double(p) {
    const a = (p.x * p.x) % P;
    const b = (p.y * p.y) % P;
    const c = (2n * p.z * p.z) % P;
    const h = mod(a + b);
    const e = mod(h - ((p.x + p.y) * (p.x + p.y)) % P);
    const g = mod(a - b);
    const f = mod(c + g);
    return { x: (e * f) % P, y: (g * h) % P, z: (f * g) % P, t: (e * h) % P };
}
/** Whether 8·P is the identity (x = 0, y = z): P lies in the torsion subgroup. */
function isSmallOrder(p) {
    const q = double(double(double(p)));
    return q.x === 0n && mod(q.y - q.z) === 0n;
}
/** For tests: whether these 32 bytes decode to a point of small order. */
export function _isSmallOrderEncoding(bytes) {
    const p = decompress(bytes);
    return p !== null && isSmallOrder(p);
}

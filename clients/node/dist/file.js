/**
 * Offline license files (docs/signing.md § 4):
 *
 * ```text
 * -----BEGIN LICENSE FILE-----
 * base64url(payload JSON) "." base64url(Ed25519 signature over the first part's ASCII bytes)
 * -----END LICENSE FILE-----
 * ```
 *
 * Inside the armor all whitespace is ignored; base64url is the URL-safe alphabet without padding.
 */
import { LicenseFileError } from './errors.js';
import { parseRfc3339 } from './time.js';
/** The first line of a license file's armor. */
export const BEGIN = '-----BEGIN LICENSE FILE-----';
/** The last line of a license file's armor. */
export const END = '-----END LICENSE FILE-----';
/** The only payload format read. */
export const FILE_FORMAT = 'licensing-file/v1';
/** How far in the future a file's `issued_at` may be (the machine's clock may lag the service's). */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
/** A verified license file. */
export class LicenseFile {
    /** The armored text, to store or show as is. */
    certificate;
    /** The signed payload. */
    payload;
    /** When it was issued. */
    issuedAt;
    /** When it stops being valid: its `expires_at`, or the license's own expiry if that is sooner. */
    validUntil;
    /** @internal Use {@link verifyLicenseFile}. */
    constructor(certificate, payload, issuedAt, validUntil) {
        this.certificate = certificate;
        this.payload = payload;
        this.issuedAt = new Date(issuedAt);
        this.validUntil = new Date(validUntil);
    }
    /** The tenant that issued it. */
    get tenantId() {
        return this.payload.tenant_id;
    }
    /** The id of the key that signed it. */
    get kid() {
        return this.payload.kid;
    }
    /** The license as it was at checkout. */
    get license() {
        return this.payload.license;
    }
    /** The machine fingerprint the file is bound to, or `null`. */
    get fingerprint() {
        return this.payload.activation?.fingerprint ?? null;
    }
    /** The id of the activation the file is bound to, or `null`. */
    get activationId() {
        return this.payload.activation?.id ?? null;
    }
    /** The entitlements in force, by feature. */
    get entitlements() {
        return this.payload.license.entitlements;
    }
    /** Whether the license grants `feature` (present, and neither `false` nor `null`). */
    hasEntitlement(feature) {
        const spec = Object.prototype.hasOwnProperty.call(this.entitlements, feature)
            ? this.entitlements[feature]
            : undefined;
        return spec !== undefined && spec !== null && spec !== false;
    }
}
const BASE64URL = /^[A-Za-z0-9_-]*$/;
function fail(reason, message) {
    throw new LicenseFileError(reason, message);
}
function base64url(text, what) {
    const decoded = BASE64URL.test(text) && text.length % 4 !== 1 ? Buffer.from(text, 'base64url') : null;
    // Canonical only: re-encoding gives the same text (no stray trailing bits).
    if (decoded === null || decoded.toString('base64url') !== text) {
        fail('malformed', `malformed license file: the ${what} is not unpadded base64url`);
    }
    return decoded;
}
/** The text between the armor lines, with every whitespace character removed. */
function unarmor(text) {
    const lines = text.split('\n').map((line) => line.trim());
    const begin = lines.indexOf(BEGIN);
    if (begin < 0)
        fail('malformed', `malformed license file: no ${BEGIN} line`);
    let body = '';
    for (const line of lines.slice(begin + 1)) {
        if (line === END)
            return body;
        body += line.replace(/\s+/g, '');
    }
    return fail('malformed', `malformed license file: no ${END} line`);
}
function isObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function timestamp(value, field) {
    const ms = parseRfc3339(value);
    if (ms === null)
        fail('malformed', `malformed license file: ${field} is not an RFC 3339 time`);
    return ms;
}
/** The payload's shape, checked once the signature has verified. */
function checkShape(payload) {
    const str = (value, field) => {
        if (typeof value !== 'string')
            fail('malformed', `malformed license file: ${field} is not a string`);
        return value;
    };
    str(payload['format'], 'format');
    str(payload['tenant_id'], 'tenant_id');
    str(payload['issued_at'], 'issued_at');
    str(payload['expires_at'], 'expires_at');
    const license = payload['license'];
    if (!isObject(license))
        fail('malformed', 'malformed license file: license is not an object');
    str(license['id'], 'license.id');
    str(license['key'], 'license.key');
    str(license['status'], 'license.status');
    if (license['expires_at'] !== null && license['expires_at'] !== undefined) {
        str(license['expires_at'], 'license.expires_at');
    }
    else {
        license['expires_at'] = null;
    }
    if (license['entitlements'] === undefined || license['entitlements'] === null) {
        license['entitlements'] = {};
    }
    else if (!isObject(license['entitlements'])) {
        fail('malformed', 'malformed license file: license.entitlements is not an object');
    }
    const activation = payload['activation'];
    if (activation === undefined || activation === null) {
        payload['activation'] = null;
    }
    else if (!isObject(activation)) {
        fail('malformed', 'malformed license file: activation is not an object');
    }
    else {
        str(activation['id'], 'activation.id');
        str(activation['fingerprint'], 'activation.fingerprint');
    }
    const ttl = payload['ttl_seconds'];
    if (ttl !== undefined && ttl !== null && !Number.isInteger(ttl)) {
        fail('malformed', 'malformed license file: ttl_seconds is not an integer');
    }
    return payload;
}
/**
 * Verifies a license file offline against the pinned keys and returns it; throws a
 * {@link LicenseFileError} whose `reason` names the first check that failed, in this order:
 *
 * 1. the armor and the `payload.signature` shape, both unpadded base64url, a 64-byte signature
 *    (`malformed`);
 * 2. the payload's `kid` is pinned (`unknown_kid`; never fetched);
 * 3. the Ed25519 signature over the first part's ASCII text (`bad_signature`);
 * 4. `format` is `licensing-file/v1` (`unsupported_format`), the payload has the documented
 *    fields (`malformed`);
 * 5. `tenant_id` is the app's (`wrong_tenant`);
 * 6. `now` is before `expires_at` and before `license.expires_at` when set (`expired`);
 * 7. `issued_at` at most 5 minutes after `now` (`not_yet_valid`);
 * 8. given a fingerprint, the file is bound (`unbound`) to that fingerprint (`wrong_fingerprint`);
 * 9. given a license key, the file is for it (`wrong_license`).
 *
 * Nothing of the payload but its `kid` is read before the signature has verified.
 */
export function verifyLicenseFile(text, options) {
    if (typeof text !== 'string')
        fail('malformed', 'malformed license file: not text');
    const body = unarmor(text);
    const dot = body.indexOf('.');
    if (dot < 0)
        fail('malformed', "malformed license file: no '.' between payload and signature");
    const payloadB64 = body.slice(0, dot);
    const payloadBytes = base64url(payloadB64, 'payload');
    const signature = base64url(body.slice(dot + 1), 'signature');
    if (signature.length !== 64)
        fail('malformed', 'malformed license file: the signature is not 64 bytes');
    let parsed;
    try {
        parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes));
    }
    catch {
        fail('malformed', 'malformed license file: the payload is not JSON');
    }
    if (!isObject(parsed) || typeof parsed['kid'] !== 'string') {
        fail('malformed', 'malformed license file: the payload has no kid');
    }
    const kid = parsed['kid'];
    const verified = options.keys.verify(kid, Buffer.from(payloadB64, 'ascii'), signature);
    if (verified === 'unknown_key') {
        fail('unknown_kid', `license file signed by unknown key ${JSON.stringify(kid)}`);
    }
    if (verified !== 'yes') {
        fail('bad_signature', 'license file signature does not verify');
    }
    const payload = checkShape(parsed);
    const issuedAt = timestamp(payload.issued_at, 'issued_at');
    let validUntil = timestamp(payload.expires_at, 'expires_at');
    if (payload.license.expires_at !== null) {
        validUntil = Math.min(validUntil, timestamp(payload.license.expires_at, 'license.expires_at'));
    }
    if (payload.format !== FILE_FORMAT) {
        fail('unsupported_format', `unsupported license file format ${JSON.stringify(payload.format)}`);
    }
    if (payload.tenant_id !== options.tenantId) {
        fail('wrong_tenant', `license file is for tenant ${JSON.stringify(payload.tenant_id)}, expected ${JSON.stringify(options.tenantId)}`);
    }
    if (options.now >= validUntil) {
        fail('expired', `license file expired at ${new Date(validUntil).toISOString()}`);
    }
    if (issuedAt > options.now + MAX_CLOCK_SKEW_MS) {
        fail('not_yet_valid', `license file issued in the future (${payload.issued_at})`);
    }
    const wanted = options.fingerprint;
    if (wanted !== null && wanted !== undefined) {
        if (payload.activation === null) {
            fail('unbound', 'license file is not bound to this machine (it is bound to none)');
        }
        if (payload.activation.fingerprint !== wanted) {
            fail('wrong_fingerprint', 'license file is bound to another machine');
        }
    }
    const key = options.licenseKey;
    if (key !== null && key !== undefined && payload.license.key !== key) {
        fail('wrong_license', 'license file is for another license');
    }
    return new LicenseFile(text, payload, issuedAt, validUntil);
}

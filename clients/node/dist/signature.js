/**
 * Signed answers, version 2 (docs/signing.md § 3). Every `/v1/integration/...` answer carries
 *
 * ```text
 * X-Signature: keyid="<kid>", algorithm="ed25519", version="2", signature="<base64>"
 * X-Signature-Date: <RFC 3339 time>
 * ```
 *
 * over seven lines: `licensing-signature-v2`, `METHOD path?query`, the tenant, the date, the
 * request's `X-Nonce`, the SHA-256 of the request body as sent and the SHA-256 of the answer's body.
 * A man in the middle who rewrites the request body and forwards the genuine answer is caught:
 * the answer no longer verifies against the body this client sent.
 */
import { createHash } from 'node:crypto';
import { parseRfc3339 } from './time.js';
/** The only signature version accepted; version 1 (no `version` parameter) is retired. */
export const SIGNATURE_VERSION = '2';
/** The first line of a version-2 signed message. */
export const SIGNATURE_CONTEXT = 'licensing-signature-v2';
/**
 * How far `X-Signature-Date` may be from the verifier's clock, either way, when a clock is given
 * (5 minutes, the skew tolerated for license files' `issued_at` too).
 */
export const MAX_ANSWER_SKEW_MS = 5 * 60 * 1000;
function bytes(data) {
    return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}
function sha256Hex(data) {
    return createHash('sha256').update(bytes(data)).digest('hex');
}
/** The UTF-8 text the service signs for one answer (seven lines, no trailing newline). */
export function signedMessage(request, date, responseBody) {
    return [
        SIGNATURE_CONTEXT,
        `${request.method.toUpperCase()} ${request.pathAndQuery}`,
        request.tenant,
        date,
        request.nonce ?? '',
        sha256Hex(request.body),
        sha256Hex(responseBody),
    ].join('\n');
}
const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEADER_VALUE = /^[\x20-\x7e\t]*$/;
/**
 * Parses `keyid="v1", algorithm="ed25519", version="2", signature="<base64>"`: comma-separated
 * `name="value"` pairs in any order, names case-insensitive; unknown names are ignored, a repeated
 * name is refused; the algorithm must be `ed25519`, the version `2` (a header without one is a
 * retired version-1 signature) and the signature standard base64 of 64 bytes. Throws a
 * `SyntaxError` saying why.
 */
export function parseSignatureHeader(header) {
    const params = new Map();
    for (const part of header.split(',')) {
        const eq = part.indexOf('=');
        if (eq < 0) {
            throw new SyntaxError(`X-Signature parameter without a value: ${JSON.stringify(part)}`);
        }
        const name = part.slice(0, eq).trim().toLowerCase();
        const quoted = part.slice(eq + 1).trim();
        if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) {
            throw new SyntaxError(`X-Signature parameter ${name} is not quoted`);
        }
        if (!['keyid', 'algorithm', 'version', 'signature'].includes(name)) {
            continue;
        }
        if (params.has(name)) {
            throw new SyntaxError(`X-Signature repeats ${name}`);
        }
        params.set(name, quoted.slice(1, -1));
    }
    const kid = params.get('keyid');
    const algorithm = params.get('algorithm');
    const version = params.get('version');
    const signature = params.get('signature');
    if (kid === undefined)
        throw new SyntaxError('X-Signature has no keyid');
    if (algorithm === undefined)
        throw new SyntaxError('X-Signature has no algorithm');
    if (version === undefined) {
        throw new SyntaxError('X-Signature has no version (version 1 is retired)');
    }
    if (signature === undefined)
        throw new SyntaxError('X-Signature has no signature');
    if (algorithm.toLowerCase() !== 'ed25519') {
        throw new SyntaxError(`X-Signature algorithm ${JSON.stringify(algorithm)} is not ed25519`);
    }
    if (version !== SIGNATURE_VERSION) {
        throw new SyntaxError(`X-Signature version ${JSON.stringify(version)} is not "2"`);
    }
    if (kid === '')
        throw new SyntaxError('X-Signature has an empty keyid');
    // Canonical base64 only (the re-encoding gives the same text), as the Rust client decodes it.
    const decoded = STANDARD_BASE64.test(signature) ? Buffer.from(signature, 'base64') : null;
    if (decoded === null || decoded.length !== 64 || decoded.toString('base64') !== signature) {
        throw new SyntaxError('X-Signature signature is not the base64 of 64 bytes');
    }
    return { kid, signature: decoded };
}
/**
 * Whether `answer` is vouched for by a pinned key as the answer to `request`. Checks, in order:
 * both headers present and visible ASCII, the header's shape ({@link parseSignatureHeader}), the
 * key pinned, the signature (strict Ed25519) over the message rebuilt from what was sent and what
 * was received, and then, given `now`, the date an RFC 3339 time within 5 minutes of it.
 */
export function verifyAnswer(keys, request, answer, options = {}) {
    const refuse = (reason, message) => ({ ok: false, reason, message });
    const { signature, date } = answer;
    if (signature === null || signature === undefined) {
        return refuse('malformed', 'the answer has no X-Signature');
    }
    if (date === null || date === undefined) {
        return refuse('malformed', 'the answer has no X-Signature-Date');
    }
    if (!HEADER_VALUE.test(signature) || !HEADER_VALUE.test(date)) {
        return refuse('malformed', 'X-Signature or X-Signature-Date is not visible ASCII');
    }
    let header;
    try {
        header = parseSignatureHeader(signature);
    }
    catch (e) {
        return refuse('malformed', e.message);
    }
    const message = Buffer.from(signedMessage(request, date, answer.body), 'utf8');
    switch (keys.verify(header.kid, message, header.signature)) {
        case 'unknown_key':
            return refuse('unknown_kid', `the answer is signed by unknown key ${JSON.stringify(header.kid)}`);
        case 'no':
            return refuse('bad_signature', `the signature by key ${JSON.stringify(header.kid)} does not verify for ` +
                `${request.method.toUpperCase()} ${request.pathAndQuery} as sent`);
        case 'yes':
            break;
    }
    const now = options.now;
    if (now === null || now === undefined) {
        return { ok: true, kid: header.kid };
    }
    const signedAt = parseRfc3339(date);
    if (signedAt === null) {
        return refuse('malformed', `X-Signature-Date ${JSON.stringify(date)} is not an RFC 3339 time`);
    }
    if (Math.abs(signedAt - now) > MAX_ANSWER_SKEW_MS) {
        return refuse('expired', `the answer was signed at ${date}, more than 5 minutes from this machine's clock ` +
            `(${new Date(now).toISOString()})`);
    }
    return { ok: true, kid: header.kid };
}

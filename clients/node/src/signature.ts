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

import type { PinnedKeys } from './keys.js';
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

/** What was sent, to check an answer against. */
export interface SentRequest {
  /** The method, such as `POST` (compared upper-cased). */
  method: string;
  /** The path exactly as sent (still percent-encoded), with `?query` when there is one. */
  pathAndQuery: string;
  /** The tenant the request was made for (`X-Tenant-Id`, or the API key's tenant). */
  tenant: string;
  /** The `X-Nonce` sent; `null`/`undefined`/empty when none. */
  nonce?: string | null | undefined;
  /** The exact bytes of the request body sent (a string is taken as UTF-8); empty when none. */
  body: Uint8Array | string;
}

/** The answer to check. */
export interface ReceivedAnswer {
  /** The `X-Signature` header; `null`/`undefined` when absent. */
  signature: string | null | undefined;
  /** The `X-Signature-Date` header; `null`/`undefined` when absent. */
  date: string | null | undefined;
  /** The exact bytes of the answer's body (a string is taken as UTF-8). */
  body: Uint8Array | string;
}

/** The parameters of an `X-Signature` header. */
export interface SignatureHeader {
  /** The id of the key that signed. */
  kid: string;
  /** The 64-byte Ed25519 signature. */
  signature: Uint8Array;
}

/** The outcome of {@link verifyAnswer}: `ok`, or why not. */
export type AnswerVerdict =
  | { ok: true; kid: string }
  | { ok: false; reason: AnswerRefusal; message: string };

/** Why an answer was refused. */
export type AnswerRefusal = 'malformed' | 'unknown_kid' | 'bad_signature' | 'expired';

function bytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(bytes(data)).digest('hex');
}

/** The UTF-8 text the service signs for one answer (seven lines, no trailing newline). */
export function signedMessage(request: SentRequest, date: string, responseBody: Uint8Array | string): string {
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
export function parseSignatureHeader(header: string): SignatureHeader {
  const params = new Map<string, string>();
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
  if (kid === undefined) throw new SyntaxError('X-Signature has no keyid');
  if (algorithm === undefined) throw new SyntaxError('X-Signature has no algorithm');
  if (version === undefined) {
    throw new SyntaxError('X-Signature has no version (version 1 is retired)');
  }
  if (signature === undefined) throw new SyntaxError('X-Signature has no signature');
  if (algorithm.toLowerCase() !== 'ed25519') {
    throw new SyntaxError(`X-Signature algorithm ${JSON.stringify(algorithm)} is not ed25519`);
  }
  if (version !== SIGNATURE_VERSION) {
    throw new SyntaxError(`X-Signature version ${JSON.stringify(version)} is not "2"`);
  }
  if (kid === '') throw new SyntaxError('X-Signature has an empty keyid');
  // Canonical base64 only (the re-encoding gives the same text), as the Rust client decodes it.
  const decoded = STANDARD_BASE64.test(signature) ? Buffer.from(signature, 'base64') : null;
  if (decoded === null || decoded.length !== 64 || decoded.toString('base64') !== signature) {
    throw new SyntaxError('X-Signature signature is not the base64 of 64 bytes');
  }
  return { kid, signature: decoded };
}

/** Options of {@link verifyAnswer}. */
export interface VerifyAnswerOptions {
  /**
   * The verifier's clock (milliseconds since the epoch). When given, an `X-Signature-Date` more
   * than {@link MAX_ANSWER_SKEW_MS} from it, either way, is refused (`expired`). The client passes
   * its clock; pass `null` to skip the check.
   */
  now?: number | null | undefined;
}

/**
 * Whether `answer` is vouched for by a pinned key as the answer to `request`. Checks, in order:
 * both headers present and visible ASCII, the header's shape ({@link parseSignatureHeader}), the
 * key pinned, the signature (strict Ed25519) over the message rebuilt from what was sent and what
 * was received, and then, given `now`, the date an RFC 3339 time within 5 minutes of it.
 */
export function verifyAnswer(
  keys: PinnedKeys,
  request: SentRequest,
  answer: ReceivedAnswer,
  options: VerifyAnswerOptions = {},
): AnswerVerdict {
  const refuse = (reason: AnswerRefusal, message: string): AnswerVerdict => ({ ok: false, reason, message });
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
  let header: SignatureHeader;
  try {
    header = parseSignatureHeader(signature);
  } catch (e) {
    return refuse('malformed', (e as Error).message);
  }
  const message = Buffer.from(signedMessage(request, date, answer.body), 'utf8');
  switch (keys.verify(header.kid, message, header.signature)) {
    case 'unknown_key':
      return refuse('unknown_kid', `the answer is signed by unknown key ${JSON.stringify(header.kid)}`);
    case 'no':
      return refuse(
        'bad_signature',
        `the signature by key ${JSON.stringify(header.kid)} does not verify for ` +
          `${request.method.toUpperCase()} ${request.pathAndQuery} as sent`,
      );
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
    return refuse(
      'expired',
      `the answer was signed at ${date}, more than 5 minutes from this machine's clock ` +
        `(${new Date(now).toISOString()})`,
    );
  }
  return { ok: true, kid: header.kid };
}

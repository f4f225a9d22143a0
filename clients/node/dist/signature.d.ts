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
import type { PinnedKeys } from './keys.js';
/** The only signature version accepted; version 1 (no `version` parameter) is retired. */
export declare const SIGNATURE_VERSION = "2";
/** The first line of a version-2 signed message. */
export declare const SIGNATURE_CONTEXT = "licensing-signature-v2";
/**
 * How far `X-Signature-Date` may be from the verifier's clock, either way, when a clock is given
 * (5 minutes, the skew tolerated for license files' `issued_at` too).
 */
export declare const MAX_ANSWER_SKEW_MS: number;
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
export type AnswerVerdict = {
    ok: true;
    kid: string;
} | {
    ok: false;
    reason: AnswerRefusal;
    message: string;
};
/** Why an answer was refused. */
export type AnswerRefusal = 'malformed' | 'unknown_kid' | 'bad_signature' | 'expired';
/** The UTF-8 text the service signs for one answer (seven lines, no trailing newline). */
export declare function signedMessage(request: SentRequest, date: string, responseBody: Uint8Array | string): string;
/**
 * Parses `keyid="v1", algorithm="ed25519", version="2", signature="<base64>"`: comma-separated
 * `name="value"` pairs in any order, names case-insensitive; unknown names are ignored, a repeated
 * name is refused; the algorithm must be `ed25519`, the version `2` (a header without one is a
 * retired version-1 signature) and the signature standard base64 of 64 bytes. Throws a
 * `SyntaxError` saying why.
 */
export declare function parseSignatureHeader(header: string): SignatureHeader;
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
export declare function verifyAnswer(keys: PinnedKeys, request: SentRequest, answer: ReceivedAnswer, options?: VerifyAnswerOptions): AnswerVerdict;

/**
 * The errors every call can throw. All of them are `LicensingError`s, so one `catch` with
 * `instanceof LicensingError` handles the library's failures; the subclasses say why.
 *
 * Only {@link ServiceUnreachableError} means "the service could not be reached": it is the one
 * failure after which the recommended use ({@link ensureLicensed}) falls back to the cached
 * license file. A verified error answer, or an answer that does not verify, never does.
 */
/** Options of {@link LicensingError}. */
export interface LicensingErrorOptions {
    /** The HTTP status of the answer, when there was one. */
    status?: number | undefined;
    /** `meta.request_id` of the answer (equal to its `X-Request-Id`), when there was one. */
    requestId?: string | undefined;
    /** The underlying error (a network error, a parse error). */
    cause?: unknown;
    /** The `error` object of the service's envelope, as it was answered. */
    details?: Record<string, unknown> | undefined;
}
/**
 * A failure of the licensing client. For an answer of the service, `code` is the service's error
 * code (`LICENSE_NOT_ACTIVE`, `LEASE_EXPIRED`, `NO_ACTIVATION`, ...), `status` the HTTP status and
 * `requestId` the answer's request id (quote it to the vendor's support). The library's own
 * failures have codes of their own: `SIGNATURE_INVALID`, `SERVICE_UNREACHABLE`, `LICENSE_FILE_INVALID`,
 * `NO_OFFLINE_LICENSE`, `CONFIG`, `UNEXPECTED_ANSWER`.
 */
export declare class LicensingError extends Error {
    /** A machine-readable code (see the class comment). */
    readonly code: string;
    /** The HTTP status of the answer; `undefined` when there was no (usable) answer. */
    readonly status: number | undefined;
    /** The answer's `meta.request_id`, when known. */
    readonly requestId: string | undefined;
    /** The whole `error` object of a verified error envelope (`limit`, `metric`, `used`, `data`, ...). */
    readonly details: Record<string, unknown> | undefined;
    constructor(code: string, message: string, options?: LicensingErrorOptions);
}
/**
 * No seat is free: every seat of the license (on a floating license every committed and every
 * overage seat) is held. The service's `TOO_MANY_ACTIVATIONS` (409, `limit` is the seat limit), or
 * `LICENSE_UNAVAILABLE` from the services that name it so. Retry later, or return another lease.
 */
export declare class LicenseUnavailableError extends LicensingError {
    /** The seat limit the service reported (`error.limit`), when it did. */
    readonly limit: number | undefined;
    constructor(code: string, message: string, options?: LicensingErrorOptions);
}
/**
 * A checkout would pass the overage cap set for the license (`OVERAGE_MAX_EXCEEDED`, 409): the
 * organization does not pay for more overage seats. Tell the user to contact their license admin.
 */
export declare class OverageMaxExceededError extends LicensingError {
}
/**
 * The answer is not vouched for by a pinned key: `X-Signature` missing or malformed, a version
 * other than 2, signed by a key that is not pinned, not verifying over the request this client
 * sent (a man in the middle rewrote it, or rewrote the answer), or signed at a time too far from
 * this machine's clock. Nothing of the answer was used; `status` is the HTTP status it came with.
 */
export declare class SignatureError extends LicensingError {
    constructor(message: string, options?: LicensingErrorOptions);
}
/**
 * The service could not be reached: DNS, connection, TLS, a timeout, a body cut off, or a 5xx
 * answer (an unsigned one from a gateway, or a verified one from the service, such as 503
 * `SERVICE_UNAVAILABLE`). The recommended use falls back to the cached license file on this error
 * and on no other.
 */
export declare class ServiceUnreachableError extends LicensingError {
    /** `code` is `SERVICE_UNREACHABLE`, or the service's own code for a verified 5xx answer. */
    constructor(message: string, options?: LicensingErrorOptions, code?: string);
}
/** Why a license file was refused, one value per check of the format (docs/signing.md § 4). */
export type LicenseFileReason = 'malformed' | 'unknown_kid' | 'bad_signature' | 'unsupported_format' | 'wrong_tenant' | 'expired' | 'not_yet_valid' | 'wrong_license' | 'unbound' | 'wrong_fingerprint';
/** A license file (checked out, or read from the cache) failed verification. */
export declare class LicenseFileError extends LicensingError {
    /** Which check refused it. */
    readonly reason: LicenseFileReason;
    constructor(reason: LicenseFileReason, message: string);
}
/** The error class for a verified error answer of the service with this `code`. */
export declare function errorForCode(code: string, message: string, options: LicensingErrorOptions): LicensingError;

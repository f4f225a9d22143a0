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
import type { PinnedKeys } from './keys.js';
/** The first line of a license file's armor. */
export declare const BEGIN = "-----BEGIN LICENSE FILE-----";
/** The last line of a license file's armor. */
export declare const END = "-----END LICENSE FILE-----";
/** The only payload format read. */
export declare const FILE_FORMAT = "licensing-file/v1";
/** How far in the future a file's `issued_at` may be (the machine's clock may lag the service's). */
export declare const MAX_CLOCK_SKEW_MS: number;
/** An entitlement as policies write them: `{ type: "boolean" }` or a metered one. */
export interface FileEntitlement {
    type: 'boolean' | 'metered' | string;
    limit?: number;
    period?: 'day' | 'month' | 'total' | string;
    overage?: 'deny' | 'allow' | string;
    [field: string]: unknown;
}
/** The license as a file carries it. */
export interface FileLicense {
    id: string;
    key: string;
    /** `active`, or `past_due` within its grace period, at checkout. */
    status: string;
    product?: string;
    policy?: string;
    /** The license's own expiry (RFC 3339), or `null` for a perpetual license. */
    expires_at: string | null;
    seats?: {
        limit?: number;
        [field: string]: unknown;
    };
    /** The entitlements in force, by feature. */
    entitlements: Record<string, FileEntitlement>;
    [field: string]: unknown;
}
/** The payload of a license file, exactly as signed (`format: "licensing-file/v1"`). */
export interface LicenseFilePayload {
    format: string;
    tenant_id: string;
    kid: string;
    license: FileLicense;
    /** The machine the file is bound to; `null` for an unbound file (API-key callers only). */
    activation: {
        id: string;
        fingerprint: string;
    } | null;
    issued_at: string;
    expires_at: string;
    ttl_seconds?: number;
    [field: string]: unknown;
}
/** A verified license file. */
export declare class LicenseFile {
    /** The armored text, to store or show as is. */
    readonly certificate: string;
    /** The signed payload. */
    readonly payload: LicenseFilePayload;
    /** When it was issued. */
    readonly issuedAt: Date;
    /** When it stops being valid: its `expires_at`, or the license's own expiry if that is sooner. */
    readonly validUntil: Date;
    /** @internal Use {@link verifyLicenseFile}. */
    constructor(certificate: string, payload: LicenseFilePayload, issuedAt: number, validUntil: number);
    /** The tenant that issued it. */
    get tenantId(): string;
    /** The id of the key that signed it. */
    get kid(): string;
    /** The license as it was at checkout. */
    get license(): FileLicense;
    /** The machine fingerprint the file is bound to, or `null`. */
    get fingerprint(): string | null;
    /** The id of the activation the file is bound to, or `null`. */
    get activationId(): string | null;
    /** The entitlements in force, by feature. */
    get entitlements(): Record<string, FileEntitlement>;
    /** Whether the license grants `feature` (present, and neither `false` nor `null`). */
    hasEntitlement(feature: string): boolean;
}
/** What a license file is checked against. */
export interface VerifyFileOptions {
    /** The pinned keys. */
    keys: PinnedKeys;
    /** The app's tenant. */
    tenantId: string;
    /**
     * This machine's fingerprint: the file must be bound to it (an unbound file is refused). Only a
     * verifier given none (`null`/`undefined`) accepts an unbound file.
     */
    fingerprint?: string | null | undefined;
    /** When given, the file must carry this license key (a swapped cache file is refused). */
    licenseKey?: string | null | undefined;
    /** The verifier's clock, in milliseconds since the epoch. */
    now: number;
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
export declare function verifyLicenseFile(text: string, options: VerifyFileOptions): LicenseFile;

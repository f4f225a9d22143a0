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
/** `{ kid: base64 public key }`, as the signing-keys listing shows them (`public_key`). */
export type PublicKeys = Readonly<Record<string, string>>;
/** The outcome of {@link PinnedKeys.verify}. */
export type Verified = 'yes' | 'no' | 'unknown_key';
/** The tenant's Ed25519 public keys, by key id (`v1`, `v2`, ...). */
export declare class PinnedKeys {
    #private;
    /**
     * Pins every key of `keys` (`{ v1: "cA2/b97J...=" }`: standard base64 of the 32 raw bytes,
     * padded or not). Throws a `LicensingError` with code `CONFIG` for a key that is not a valid
     * Ed25519 public key, or when none is given.
     */
    constructor(keys: PublicKeys);
    /** The pinned key ids, sorted. */
    kids(): string[];
    /** Whether a key is pinned under `kid`. */
    has(kid: string): boolean;
    /** Verifies the 64-byte `signature` over `message` with the key pinned under `kid`. */
    verify(kid: string, message: Uint8Array, signature: Uint8Array): Verified;
}
/** For tests: whether these 32 bytes decode to a point of small order. */
export declare function _isSmallOrderEncoding(bytes: Uint8Array): boolean;

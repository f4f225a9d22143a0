/** The client: one tenant's Integration API, with a license key (or an API key) as credential. */
import { type LicenseFile } from './file.js';
import { Heartbeats, Lease, type LeaseHost, type Renewal } from './lease.js';
import { PinnedKeys, type PublicKeys } from './keys.js';
import { type EnsureLicensedOptions, type Licensed } from './session.js';
import { type Clock } from './time.js';
import type { Activation, EntitlementCheck, UsageRecord, Validation } from './types.js';
/** The request timeout when none is set: 30 s. */
export declare const DEFAULT_TIMEOUT_MS = 30000;
/** The part of a `fetch` response the client reads. */
export interface FetchResponse {
    readonly status: number;
    readonly headers: {
        get(name: string): string | null;
    };
    arrayBuffer(): Promise<ArrayBuffer>;
}
/** What the client calls to send a request: the global `fetch` unless another is given. */
export type FetchLike = (url: string, init: {
    method: string;
    headers: Record<string, string>;
    body?: Uint8Array;
    redirect: 'manual';
    signal?: AbortSignal;
}) => Promise<FetchResponse>;
/** Settings of a {@link LicenseClient}. */
export interface LicenseClientOptions {
    /**
     * The service's base URL, such as `https://abc.execute-api.eu-west-1.amazonaws.com` (a path
     * prefix such as a stage name is kept). `https://` is required, except `http://` to a loopback
     * address (local testing).
     */
    serverUrl: string;
    /** The vendor's tenant id. */
    tenantId: string;
    /**
     * The tenant's public keys, `{ kid: base64 }`, copied at build time from
     * `GET /v1/public/tenants/{tenant_id}/signing-keys`: every listed key, retired ones too (always
     * `v1`). Never fetched at run time. At least one is required.
     */
    publicKeys: PublicKeys;
    /**
     * The end user's license key: the credential (`Authorization: License <key>`) and the license
     * the calls act on. A client app ships no other credential.
     */
    licenseKey?: string | undefined;
    /**
     * An API key with scope `integration` (`X-API-Key`), for a vendor's backend instead of a
     * license key. Then `licenseKey` (here or per call) names the license to act on.
     */
    apiKey?: string | undefined;
    /** The product code sent with validate, so a license for another product is `PRODUCT_MISMATCH`. */
    productId?: string | undefined;
    /** Where the offline license file is cached (one file per tenant and license). */
    cacheDir?: string | undefined;
    /** The timeout of each request, in milliseconds (default 30 s). */
    timeoutMs?: number | undefined;
    /**
     * The clock (milliseconds or a `Date`), `Date.now` by default: used to check license files and
     * answers' `X-Signature-Date`, and by the recommended use to age the cached file.
     */
    clock?: Clock | undefined;
    /** Sends the requests (default: the global `fetch`). Tests inject one to count or to fail. */
    fetch?: FetchLike | undefined;
    /**
     * Whether an answer signed more than 5 minutes from this machine's clock is refused (default
     * `true`, as `clients/conformance` expects). A replayed answer fails on its nonce anyway; turn
     * this off only for machines whose clock cannot be trusted to within minutes.
     */
    checkAnswerDates?: boolean | undefined;
}
/** The answer of {@link LicenseClient.validateOrOffline}. */
export type Verdict = {
    online: true;
    valid: boolean;
    validation: Validation;
} | {
    online: false;
    valid: true;
    file: LicenseFile;
};
/** Per-call override of the license a call acts on (needed with an API key and no `licenseKey`). */
export interface LicenseKeyOption {
    licenseKey?: string | undefined;
}
/**
 * A client of the licensing service for one tenant (and, with a license key, one license).
 *
 * Every call sends the credential, `X-Tenant-Id` and a fresh random `X-Nonce`, and verifies the
 * answer's signature (version 2) against the pinned keys over the exact bytes it sent, before
 * reading anything of it: an answer that does not verify is a {@link SignatureError}.
 */
export declare class LicenseClient implements LeaseHost {
    #private;
    readonly tenantId: string;
    readonly productId: string | undefined;
    readonly cacheDir: string | undefined;
    constructor(options: LicenseClientOptions);
    /** How many HTTP requests this client has sent. */
    get requestCount(): number;
    /** The pinned keys. */
    get keys(): PinnedKeys;
    /** The client's clock, now, in milliseconds. */
    now(): number;
    /** The license key the client was made with, if any. */
    get licenseKey(): string | undefined;
    /** Where the offline license file of this tenant and license is cached; `null` without a cache directory. */
    get cachePath(): string | null;
    /**
     * Validates the license (always answers for a well-formed request: see `valid` and `code`),
     * optionally for this machine's `fingerprint` (then it must hold a seat, else `NO_ACTIVATION`),
     * the client's product, and `entitlements` (else `ENTITLEMENTS_MISSING`).
     */
    validate(options?: {
        fingerprint?: string;
        entitlements?: string[];
        product?: string;
    } & LicenseKeyOption): Promise<Validation>;
    /**
     * Takes a seat for this machine (201), or answers the existing one (200). On a floating license
     * this checks out (or renews) a lease: prefer {@link checkout}, which keeps it alive.
     */
    activate(options: {
        fingerprint: string;
        name?: string;
        hostname?: string;
        metadata?: Record<string, unknown>;
    } & LicenseKeyOption): Promise<Activation>;
    /** Frees this machine's seat (on a floating license: returns its lease). Repeating it is harmless. */
    deactivate(options: {
        fingerprint: string;
    } & LicenseKeyOption): Promise<Activation>;
    /**
     * Returns a lease (or frees any seat) by its id: `DELETE /v1/integration/activations/{id}`.
     * Stops the heartbeats of a {@link Lease} of this client with that id.
     */
    returnLicense(leaseId: string): Promise<Activation>;
    /**
     * Renews a lease to now + its `lease_seconds` (node-locked: records that the machine is alive).
     * A lapsed, returned or reclaimed lease is a `LicensingError` with code `LEASE_EXPIRED`.
     */
    heartbeat(activationId: string): Promise<Renewal>;
    /**
     * Checks out a floating lease for `user` (the lease's fingerprint: a person, or a person on a
     * machine) and keeps it alive in the background at a third of its length until
     * {@link Lease.return} (or {@link returnLicense}, or {@link close}). Checking out again for the
     * same user renews the same lease.
     *
     * Throws {@link LicenseUnavailableError} when every seat (and every overage seat) is held,
     * {@link OverageMaxExceededError} when the overage cap would be passed.
     */
    checkout(options: {
        user: string;
        name?: string;
        hostname?: string;
        metadata?: Record<string, unknown>;
        /** Renew in the background (default `true`). */
        heartbeat?: boolean;
        /** The time between heartbeats (default: a third of the lease). */
        heartbeatIntervalMs?: number;
    } & LicenseKeyOption): Promise<Lease>;
    /** @internal A lease returned through its own `return()`. */
    forget(lease: Lease): void;
    /**
     * Heartbeats of an activation (a node-locked seat whose policy sets `heartbeat_seconds`) every
     * `intervalMs`, in the background, unref'd; the first one an interval from now. `stop()` them.
     */
    keepAlive(activationId: string, intervalMs: number): Heartbeats;
    /** @internal Starts a lease's heartbeats and stops them on {@link close}. */
    adopt(lease: Lease): Lease;
    /**
     * Records `quantity` of a metered entitlement. With `idempotencyKey`, a retry of the same record
     * counts once (48 hours).
     */
    recordUsage(options: {
        metric: string;
        quantity: number;
        timestamp?: Date | string;
        metadata?: Record<string, unknown>;
        idempotencyKey?: string;
    } & LicenseKeyOption): Promise<UsageRecord>;
    /** Which of `features` the license grants (and the usage of metered ones). */
    checkEntitlements(features: string[], options?: LicenseKeyOption): Promise<EntitlementCheck>;
    /**
     * Checks out a signed offline license file bound to this machine (`fingerprint` must hold a
     * seat, else `NO_ACTIVATION`), valid for `ttlSeconds` (3600 to 7776000; the service's default
     * 86400; the policy may cut it: the file's `validUntil` is the real end), verifies it, and, with a
     * cache directory, stores it there atomically.
     */
    checkoutFile(options: {
        fingerprint: string;
        ttlSeconds?: number;
    } & LicenseKeyOption): Promise<LicenseFile>;
    /** @internal {@link checkoutFile} without the cache. */
    fetchFile(options: {
        fingerprint: string;
        ttlSeconds?: number;
    } & LicenseKeyOption): Promise<LicenseFile>;
    /**
     * Verifies a license file's text now, for this tenant and (given one) this machine; with the
     * client's license key, the file must be for it.
     */
    verifyFile(text: string, options?: {
        fingerprint?: string | null;
        licenseKey?: string | null;
    }): LicenseFile;
    /**
     * The cached license file, verified now: `null` when nothing is cached; a
     * {@link LicenseFileError} when the cached file does not verify (expired, another machine, ...).
     * Given a fingerprint, the file must be bound to it.
     */
    offlineLicense(options?: {
        fingerprint?: string;
    }): Promise<LicenseFile | null>;
    /** @internal The cached text, or `null`. */
    readCache(): Promise<string | null>;
    /** @internal Writes the cache (no-op without a cache directory). */
    writeCache(certificate: string): Promise<void>;
    /** Removes the cached license file, if any. */
    clearCache(): Promise<void>;
    /**
     * Validates online; when the service cannot be reached ({@link ServiceUnreachableError}),
     * answers from the cached file instead, if it verifies for this machine. A verified error
     * answer or an unverified answer is thrown as is, never replaced by the file.
     */
    validateOrOffline(options?: {
        fingerprint?: string;
    }): Promise<Verdict>;
    /**
     * The recommended use: licensed from the cached file (0 calls) while it verifies and is less
     * than a day old, else from a freshly checked-out file (activating this machine on the first
     * run), else, when the service is unreachable, offline from the cached file while it is valid.
     * See {@link ensureLicensed}.
     */
    ensureLicensed(options: EnsureLicensedOptions): Promise<Licensed>;
    /** Stops every background heartbeat of this client's leases (the leases are not returned). */
    close(): void;
    /** @internal Activation, with the answer's signing time (for the lease's length). */
    activateRenewal(options: {
        fingerprint: string;
        name?: string;
        hostname?: string;
        metadata?: Record<string, unknown>;
    } & LicenseKeyOption): Promise<Renewal>;
}

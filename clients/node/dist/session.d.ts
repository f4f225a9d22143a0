/**
 * The recommended use, the same in every client library:
 *
 * 1. the cached license file verifies (pinned key, tenant, this machine, not expired) and was
 *    issued less than a day ago → licensed, **no call**;
 * 2. else check out a fresh file bound to this machine (1 call); on `NO_ACTIVATION` (the seat was
 *    released) activate, then check out (2 more); on the first run (nothing cached) activate and
 *    check out (2 calls). The file is written atomically;
 * 3. the service unreachable (network error, 5xx) — or rate limiting this license (a signed
 *    429) — and the cached file still valid → licensed offline;
 * 4. no heartbeats for a node-locked license unless its policy sets `heartbeat_seconds` (pass it
 *    as `heartbeatSeconds`); a floating license's lease is renewed at a third of its length.
 *
 * So a node-locked app makes one call a day (two on the first day) however long and often it runs.
 */
import { LicenseClient, type LicenseClientOptions } from './client.js';
import { LicensingError } from './errors.js';
import type { FileEntitlement, FileLicense, LicenseFile } from './file.js';
import { Lease, type Heartbeats } from './lease.js';
/** How old the cached file may be before a fresh one is checked out: one day. */
export declare const REFRESH_AFTER_MS: number;
/**
 * How long each file asks to last: 7 days, the offline grace a machine gets (the policy's
 * `max_file_ttl_seconds`, 14 days unless the vendor sets it, may cut it).
 */
export declare const DEFAULT_FILE_TTL_SECONDS: number;
/** What {@link ensureLicensed} needs besides the client. */
export interface EnsureLicensedOptions {
    /** This machine's fingerprint: the seat, and the machine every file is bound to. */
    fingerprint: string;
    /** A name for the activation (shown to the vendor and the customer). */
    name?: string;
    /** The machine's hostname, for the activation. */
    hostname?: string;
    /** Metadata of the activation. */
    metadata?: Record<string, unknown>;
    /** How long each file asks to last, in seconds (default 7 days; the policy may cut it). */
    ttlSeconds?: number;
    /** How old the cached file may be before a fresh one is checked out (default one day). */
    refreshAfterMs?: number;
    /**
     * A floating license: check out (or renew) this machine's lease on every start and renew it in
     * the background at a third of its length; the file is still refreshed once a day.
     */
    floating?: boolean;
    /**
     * A node-locked policy that sets `heartbeat_seconds`: heartbeat every third of it, in the
     * background. Without it, a node-locked license sends no heartbeat.
     */
    heartbeatSeconds?: number;
}
/** How the app is licensed. */
export interface Licensed {
    /** `cache`: the cached file, no call; `online`: a file checked out now; `offline`: the cached file, the service unreachable. */
    source: 'cache' | 'online' | 'offline';
    /** The verified license file (bound to this machine). */
    file: LicenseFile;
    /** The license, as the file carries it. */
    license: FileLicense;
    /** The entitlements in force, by feature. */
    entitlements: Record<string, FileEntitlement>;
    /** Whether `feature` is granted. */
    hasEntitlement(feature: string): boolean;
    /** When the file stops being valid (the app must run this again before, to stay licensed). */
    validUntil: Date;
    /** The floating lease held by this machine, renewed in the background; `null` otherwise. */
    lease: Lease | null;
    /** Node-locked heartbeats (with `heartbeatSeconds`); `null` otherwise. */
    heartbeats: Heartbeats | null;
    /** How many HTTP calls this run made. */
    calls: number;
    /**
     * Offline: why the service could not be used (a {@link ServiceUnreachableError}, or the
     * service's `RATE_LIMITED`).
     */
    unreachable: LicensingError | null;
    /** A failure to write the cache (the app is licensed all the same, but will call again next time). */
    cacheError: Error | null;
    /** Stops the background heartbeats (does not return the lease: `lease.return()` does). */
    stop(): void;
}
/** @internal The recommended use with a client already made. */
export declare function runSession(client: LicenseClient, options: EnsureLicensedOptions): Promise<Licensed>;
/** Settings of the stand-alone {@link ensureLicensed}: the client's and the session's. */
export type EnsureLicensedSettings = LicenseClientOptions & EnsureLicensedOptions & {
    /** The end user's license key. */
    licenseKey: string;
    /** Where the offline license file is cached. */
    cacheDir: string;
};
/** The outcome of the stand-alone {@link ensureLicensed}: also the client it made. */
export interface LicensedWithClient extends Licensed {
    /** The client made for this run (for usage records, validate, ... and `close()`). */
    client: LicenseClient;
}
/**
 * The recommended use (see the module comment): makes a client, and answers how the app is
 * licensed, or throws why it is not. Run it at start-up and then every hour or so while the app
 * runs (it makes no call until the file is a day old).
 *
 * Throws {@link SignatureError} when an answer does not verify (no offline fallback), the
 * service's refusal as a {@link LicensingError} (`LICENSE_NOT_ACTIVE`, `UNAUTHENTICATED`,
 * {@link LicenseUnavailableError} when no seat is free, ...; the cached file is then removed), or
 * {@link ServiceUnreachableError} when the service cannot be reached and no valid file is cached.
 */
export declare function ensureLicensed(settings: EnsureLicensedSettings): Promise<LicensedWithClient>;
/** @internal */
export declare function ensureLicensed(client: LicenseClient, options: EnsureLicensedOptions): Promise<Licensed>;

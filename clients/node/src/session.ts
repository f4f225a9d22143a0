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
import { LicensingError, ServiceUnreachableError } from './errors.js';
import type { FileEntitlement, FileLicense, LicenseFile } from './file.js';
import { Lease, type Heartbeats, type Renewal } from './lease.js';

/** How old the cached file may be before a fresh one is checked out: one day. */
export const REFRESH_AFTER_MS = 24 * 60 * 60 * 1000;
/**
 * How long each file asks to last: 7 days, the offline grace a machine gets (the policy's
 * `max_file_ttl_seconds`, 14 days unless the vendor sets it, may cut it).
 */
export const DEFAULT_FILE_TTL_SECONDS = 7 * 24 * 60 * 60;

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

/** The service cannot answer now: unreachable, or a signed 429 (rate limited). */
function isUnavailable(e: unknown): e is LicensingError {
  return e instanceof ServiceUnreachableError || (e instanceof LicensingError && e.status === 429);
}

/** A verified refusal by the service (not a rate limit): the machine is not licensed. */
function isRefusal(e: unknown): boolean {
  return (
    e instanceof LicensingError &&
    !(e instanceof ServiceUnreachableError) &&
    e.status !== undefined &&
    e.status >= 400 &&
    e.status < 500 &&
    e.status !== 429
  );
}

/** @internal The recommended use with a client already made. */
export async function runSession(client: LicenseClient, options: EnsureLicensedOptions): Promise<Licensed> {
  const { fingerprint } = options;
  if (typeof fingerprint !== 'string' || fingerprint === '') {
    throw new LicensingError('CONFIG', 'ensureLicensed needs this machine\'s fingerprint');
  }
  if (client.licenseKey === undefined || client.cachePath === null) {
    throw new LicensingError('CONFIG', 'ensureLicensed needs a client with a licenseKey and a cacheDir');
  }
  const startCalls = client.requestCount;
  const refreshAfter = options.refreshAfterMs ?? REFRESH_AFTER_MS;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_FILE_TTL_SECONDS;
  const activation = {
    fingerprint,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
    ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
  };

  // 1. The cached file: unreadable or refused counts as none to rely on (but not as a first run).
  let text: string | null = null;
  try {
    text = await client.readCache();
  } catch {
    text = '';
  }
  let cached: LicenseFile | null = null;
  if (text !== null && text !== '') {
    try {
      cached = client.verifyFile(text, { fingerprint });
    } catch {
      cached = null;
    }
  }

  let lease: Lease | null = null;
  let heartbeats: Heartbeats | null = null;
  const holdLease = (renewal: Renewal): void => {
    if (renewal.activation.lease_expires_at !== null && renewal.activation.lease_expires_at !== undefined) {
      lease?.stop();
      lease = client.adopt(new Lease(client, fingerprint, renewal, undefined));
    }
  };
  const done = (
    source: Licensed['source'],
    file: LicenseFile,
    unreachable: LicensingError | null,
    cacheError: Error | null,
  ): Licensed => {
    const activationId = file.activationId;
    if (
      lease === null &&
      options.heartbeatSeconds !== undefined &&
      activationId !== null &&
      source !== 'offline'
    ) {
      heartbeats = client.keepAlive(activationId, (options.heartbeatSeconds * 1000) / 3);
    }
    const held: Lease | null = lease;
    const beats: Heartbeats | null = heartbeats;
    return {
      source,
      file,
      license: file.license,
      entitlements: file.entitlements,
      hasEntitlement: (feature) => file.hasEntitlement(feature),
      validUntil: file.validUntil,
      lease: held,
      heartbeats: beats,
      calls: client.requestCount - startCalls,
      unreachable,
      cacheError,
      stop: () => {
        held?.stop();
        beats?.stop();
      },
    };
  };

  try {
    if (options.floating === true) {
      holdLease(await client.activateRenewal(activation));
    }
    if (cached !== null && client.now() - cached.issuedAt.getTime() < refreshAfter) {
      return done('cache', cached, null, null);
    }

    // 2. A fresh file bound to this machine.
    const fetchFile = () => client.fetchFile({ fingerprint, ttlSeconds });
    let file: LicenseFile;
    if (text === null && options.floating !== true) {
      // The first run: this machine holds no seat yet.
      holdLease(await client.activateRenewal(activation));
      file = await fetchFile();
    } else {
      try {
        file = await fetchFile();
      } catch (e) {
        if (!(e instanceof LicensingError && e.code === 'NO_ACTIVATION')) throw e;
        // The seat was released (or the lease lapsed): take it again.
        const renewal = await client.activateRenewal(activation);
        holdLease(renewal);
        try {
          file = await fetchFile();
        } catch (again) {
          const nodeLocked = renewal.activation.lease_expires_at === null;
          if (!(again instanceof LicensingError && again.code === 'NO_ACTIVATION' && nodeLocked)) throw again;
          // A node-locked seat whose heartbeat is overdue (HEARTBEAT_DEAD): one heartbeat revives it.
          await client.heartbeat(renewal.activation.id);
          file = await fetchFile();
        }
      }
    }
    let cacheError: Error | null = null;
    try {
      await client.writeCache(file.certificate);
    } catch (e) {
      cacheError = e as Error;
    }
    return done('online', file, null, cacheError);
  } catch (e) {
    // 3. Unreachable (or rate limited): the cached file, while it is valid.
    if (isUnavailable(e) && cached !== null) {
      return done('offline', cached, e, null);
    }
    (lease as Lease | null)?.stop();
    if (isRefusal(e)) {
      // Signed and verified: this machine is not licensed; do not keep a file to run offline on.
      await client.clearCache().catch(() => undefined);
    }
    throw e;
  }
}

/** Settings of the stand-alone {@link ensureLicensed}: the client's and the session's. */
export type EnsureLicensedSettings = LicenseClientOptions &
  EnsureLicensedOptions & {
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
export function ensureLicensed(settings: EnsureLicensedSettings): Promise<LicensedWithClient>;
/** @internal */
export function ensureLicensed(client: LicenseClient, options: EnsureLicensedOptions): Promise<Licensed>;
export async function ensureLicensed(
  first: LicenseClient | EnsureLicensedSettings,
  options?: EnsureLicensedOptions,
): Promise<Licensed | LicensedWithClient> {
  if (first instanceof LicenseClient) {
    return runSession(first, options as EnsureLicensedOptions);
  }
  const client = new LicenseClient(first);
  const licensed = await runSession(client, first);
  return { ...licensed, client };
}

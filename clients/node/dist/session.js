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
import { LicenseClient } from './client.js';
import { LicensingError, ServiceUnreachableError } from './errors.js';
import { Lease } from './lease.js';
/** How old the cached file may be before a fresh one is checked out: one day. */
export const REFRESH_AFTER_MS = 24 * 60 * 60 * 1000;
/**
 * How long each file asks to last: 7 days, the offline grace a machine gets (the policy's
 * `max_file_ttl_seconds`, 14 days unless the vendor sets it, may cut it).
 */
export const DEFAULT_FILE_TTL_SECONDS = 7 * 24 * 60 * 60;
/** The service cannot answer now: unreachable, or a signed 429 (rate limited). */
function isUnavailable(e) {
    return e instanceof ServiceUnreachableError || (e instanceof LicensingError && e.status === 429);
}
/** A verified refusal by the service (not a rate limit): the machine is not licensed. */
function isRefusal(e) {
    return (e instanceof LicensingError &&
        !(e instanceof ServiceUnreachableError) &&
        e.status !== undefined &&
        e.status >= 400 &&
        e.status < 500 &&
        e.status !== 429);
}
/** @internal The recommended use with a client already made. */
export async function runSession(client, options) {
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
    let text = null;
    try {
        text = await client.readCache();
    }
    catch {
        text = '';
    }
    let cached = null;
    if (text !== null && text !== '') {
        try {
            cached = client.verifyFile(text, { fingerprint });
        }
        catch {
            cached = null;
        }
    }
    let lease = null;
    let heartbeats = null;
    const holdLease = (renewal) => {
        if (renewal.activation.lease_expires_at !== null && renewal.activation.lease_expires_at !== undefined) {
            lease?.stop();
            lease = client.adopt(new Lease(client, fingerprint, renewal, undefined));
        }
    };
    const done = (source, file, unreachable, cacheError) => {
        const activationId = file.activationId;
        if (lease === null &&
            options.heartbeatSeconds !== undefined &&
            activationId !== null &&
            source !== 'offline') {
            heartbeats = client.keepAlive(activationId, (options.heartbeatSeconds * 1000) / 3);
        }
        const held = lease;
        const beats = heartbeats;
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
        let file;
        if (text === null && options.floating !== true) {
            // The first run: this machine holds no seat yet.
            holdLease(await client.activateRenewal(activation));
            file = await fetchFile();
        }
        else {
            try {
                file = await fetchFile();
            }
            catch (e) {
                if (!(e instanceof LicensingError && e.code === 'NO_ACTIVATION'))
                    throw e;
                // The seat was released (or the lease lapsed): take it again.
                const renewal = await client.activateRenewal(activation);
                holdLease(renewal);
                try {
                    file = await fetchFile();
                }
                catch (again) {
                    const nodeLocked = renewal.activation.lease_expires_at === null;
                    if (!(again instanceof LicensingError && again.code === 'NO_ACTIVATION' && nodeLocked))
                        throw again;
                    // A node-locked seat whose heartbeat is overdue (HEARTBEAT_DEAD): one heartbeat revives it.
                    await client.heartbeat(renewal.activation.id);
                    file = await fetchFile();
                }
            }
        }
        let cacheError = null;
        try {
            await client.writeCache(file.certificate);
        }
        catch (e) {
            cacheError = e;
        }
        return done('online', file, null, cacheError);
    }
    catch (e) {
        // 3. Unreachable (or rate limited): the cached file, while it is valid.
        if (isUnavailable(e) && cached !== null) {
            return done('offline', cached, e, null);
        }
        lease?.stop();
        if (isRefusal(e)) {
            // Signed and verified: this machine is not licensed; do not keep a file to run offline on.
            await client.clearCache().catch(() => undefined);
        }
        throw e;
    }
}
export async function ensureLicensed(first, options) {
    if (first instanceof LicenseClient) {
        return runSession(first, options);
    }
    const client = new LicenseClient(first);
    const licensed = await runSession(client, first);
    return { ...licensed, client };
}

/** The client: one tenant's Integration API, with a license key (or an API key) as credential. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { cacheFileName, readCached, removeCached, writeAtomically } from './cache.js';
import { LicensingError, ServiceUnreachableError, SignatureError, errorForCode, } from './errors.js';
import { verifyLicenseFile } from './file.js';
import { Heartbeats, Lease } from './lease.js';
import { PinnedKeys } from './keys.js';
import { runSession } from './session.js';
import { verifyAnswer } from './signature.js';
import { nowMs, parseRfc3339 } from './time.js';
/** The request timeout when none is set: 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;
function isLoopback(hostname) {
    const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
    return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
function parseServerUrl(text) {
    let url;
    try {
        url = new URL(text);
    }
    catch {
        throw new LicensingError('CONFIG', `serverUrl ${JSON.stringify(text)} is not a URL`);
    }
    if (!(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))) {
        throw new LicensingError('CONFIG', `serverUrl ${JSON.stringify(text)} must be https:// (http:// only to a loopback address)`);
    }
    if (url.search !== '' || url.hash !== '') {
        throw new LicensingError('CONFIG', `serverUrl ${JSON.stringify(text)} has a query or fragment`);
    }
    return url;
}
const HEADER_SAFE = /^[\x21-\x7e]+$/;
/**
 * A client of the licensing service for one tenant (and, with a license key, one license).
 *
 * Every call sends the credential, `X-Tenant-Id` and a fresh random `X-Nonce`, and verifies the
 * answer's signature (version 2) against the pinned keys over the exact bytes it sent, before
 * reading anything of it: an answer that does not verify is a {@link SignatureError}.
 */
export class LicenseClient {
    tenantId;
    productId;
    cacheDir;
    #base;
    #licenseKey;
    #apiKey;
    #keys;
    #timeoutMs;
    #clock;
    #fetch;
    #checkDates;
    #leases = new Set();
    #requests = 0;
    constructor(options) {
        if (options === null || typeof options !== 'object') {
            throw new LicensingError('CONFIG', 'LicenseClient needs an options object');
        }
        const { serverUrl, tenantId, licenseKey, apiKey } = options;
        if (typeof serverUrl !== 'string')
            throw new LicensingError('CONFIG', 'no serverUrl');
        this.#base = parseServerUrl(serverUrl);
        if (typeof tenantId !== 'string' || !HEADER_SAFE.test(tenantId)) {
            throw new LicensingError('CONFIG', 'tenantId is missing or not a valid header value');
        }
        this.tenantId = tenantId;
        if (licenseKey !== undefined && (typeof licenseKey !== 'string' || !HEADER_SAFE.test(licenseKey))) {
            throw new LicensingError('CONFIG', 'licenseKey is not a valid header value');
        }
        if (apiKey !== undefined && (typeof apiKey !== 'string' || !HEADER_SAFE.test(apiKey))) {
            throw new LicensingError('CONFIG', 'apiKey is not a valid header value');
        }
        if (licenseKey === undefined && apiKey === undefined) {
            throw new LicensingError('CONFIG', 'a licenseKey (or an apiKey) is required');
        }
        this.#licenseKey = licenseKey;
        this.#apiKey = apiKey;
        this.#keys = new PinnedKeys(options.publicKeys);
        this.productId = options.productId;
        this.cacheDir = options.cacheDir;
        const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        if (!(Number.isFinite(timeout) && timeout > 0)) {
            throw new LicensingError('CONFIG', 'timeoutMs must be a positive number');
        }
        this.#timeoutMs = timeout;
        this.#clock = options.clock ?? Date.now;
        const globalFetch = globalThis.fetch;
        const chosen = options.fetch ?? globalFetch;
        if (typeof chosen !== 'function') {
            throw new LicensingError('CONFIG', 'no fetch: Node.js 18 or later has one, or pass options.fetch');
        }
        this.#fetch = chosen;
        this.#checkDates = options.checkAnswerDates ?? true;
    }
    /** How many HTTP requests this client has sent. */
    get requestCount() {
        return this.#requests;
    }
    /** The pinned keys. */
    get keys() {
        return this.#keys;
    }
    /** The client's clock, now, in milliseconds. */
    now() {
        return nowMs(this.#clock);
    }
    /** The license key the client was made with, if any. */
    get licenseKey() {
        return this.#licenseKey;
    }
    /** Where the offline license file of this tenant and license is cached; `null` without a cache directory. */
    get cachePath() {
        if (this.cacheDir === undefined || this.#licenseKey === undefined)
            return null;
        return join(this.cacheDir, cacheFileName(this.tenantId, this.#licenseKey));
    }
    // ---- the operations -----------------------------------------------------------------------
    /**
     * Validates the license (always answers for a well-formed request: see `valid` and `code`),
     * optionally for this machine's `fingerprint` (then it must hold a seat, else `NO_ACTIVATION`),
     * the client's product, and `entitlements` (else `ENTITLEMENTS_MISSING`).
     */
    async validate(options = {}) {
        const body = {};
        if (options.fingerprint !== undefined)
            body['fingerprint'] = options.fingerprint;
        const product = options.product ?? this.productId;
        if (product !== undefined)
            body['product'] = product;
        if (options.entitlements !== undefined)
            body['entitlements'] = options.entitlements;
        const key = this.#key(options);
        return (await this.#request('POST', ['licenses', key, 'validate'], body)).data;
    }
    /**
     * Takes a seat for this machine (201), or answers the existing one (200). On a floating license
     * this checks out (or renews) a lease: prefer {@link checkout}, which keeps it alive.
     */
    async activate(options) {
        return (await this.#activate(options)).activation;
    }
    /** Frees this machine's seat (on a floating license: returns its lease). Repeating it is harmless. */
    async deactivate(options) {
        const body = { license_key: this.#key(options), fingerprint: options.fingerprint };
        return (await this.#request('POST', ['activations', 'deactivate'], body)).data;
    }
    /**
     * Returns a lease (or frees any seat) by its id: `DELETE /v1/integration/activations/{id}`.
     * Stops the heartbeats of a {@link Lease} of this client with that id.
     */
    async returnLicense(leaseId) {
        for (const lease of this.#leases) {
            if (lease.id === leaseId)
                lease.stop();
        }
        const answer = await this.#request('DELETE', ['activations', leaseId], undefined);
        for (const lease of [...this.#leases]) {
            if (lease.id === leaseId)
                this.#leases.delete(lease);
        }
        return answer.data;
    }
    /**
     * Renews a lease to now + its `lease_seconds` (node-locked: records that the machine is alive).
     * A lapsed, returned or reclaimed lease is a `LicensingError` with code `LEASE_EXPIRED`.
     */
    async heartbeat(activationId) {
        const answer = await this.#request('POST', ['activations', activationId, 'heartbeat'], {});
        return { activation: answer.data, signedAt: answer.signedAt };
    }
    /**
     * Checks out a floating lease for `user` (the lease's fingerprint: a person, or a person on a
     * machine) and keeps it alive in the background at a third of its length until
     * {@link Lease.return} (or {@link returnLicense}, or {@link close}). Checking out again for the
     * same user renews the same lease.
     *
     * Throws {@link LicenseUnavailableError} when every seat (and every overage seat) is held,
     * {@link OverageMaxExceededError} when the overage cap would be passed.
     */
    async checkout(options) {
        if (typeof options?.user !== 'string' || options.user === '') {
            throw new LicensingError('CONFIG', 'checkout needs a user');
        }
        const renewal = await this.#activate({ ...options, fingerprint: options.user });
        const lease = new Lease(this, options.user, renewal, options.heartbeatIntervalMs);
        return options.heartbeat === false ? lease : this.adopt(lease);
    }
    /** @internal A lease returned through its own `return()`. */
    forget(lease) {
        this.#leases.delete(lease);
    }
    /**
     * Heartbeats of an activation (a node-locked seat whose policy sets `heartbeat_seconds`) every
     * `intervalMs`, in the background, unref'd; the first one an interval from now. `stop()` them.
     */
    keepAlive(activationId, intervalMs) {
        return new Heartbeats(this, activationId, null, intervalMs).start();
    }
    /** @internal Starts a lease's heartbeats and stops them on {@link close}. */
    adopt(lease) {
        lease.start();
        this.#leases.add(lease);
        return lease;
    }
    /**
     * Records `quantity` of a metered entitlement. With `idempotencyKey`, a retry of the same record
     * counts once (48 hours).
     */
    async recordUsage(options) {
        const body = {
            license_key: this.#key(options),
            metric: options.metric,
            quantity: options.quantity,
        };
        if (options.timestamp !== undefined) {
            body['timestamp'] =
                options.timestamp instanceof Date ? options.timestamp.toISOString() : options.timestamp;
        }
        if (options.metadata !== undefined)
            body['metadata'] = options.metadata;
        const extra = {};
        if (options.idempotencyKey !== undefined)
            extra['x-idempotency-key'] = options.idempotencyKey;
        return (await this.#request('POST', ['usage', 'record'], body, extra)).data;
    }
    /** Which of `features` the license grants (and the usage of metered ones). */
    async checkEntitlements(features, options = {}) {
        const body = { license_key: this.#key(options), features };
        return (await this.#request('POST', ['entitlements', 'check'], body)).data;
    }
    /**
     * Checks out a signed offline license file bound to this machine (`fingerprint` must hold a
     * seat, else `NO_ACTIVATION`), valid for `ttlSeconds` (3600 to 7776000; the service's default
     * 86400; the policy may cut it: the file's `validUntil` is the real end), verifies it, and, with a
     * cache directory, stores it there atomically.
     */
    async checkoutFile(options) {
        const file = await this.fetchFile(options);
        const path = this.#cachePathFor(options);
        if (path !== null) {
            await writeAtomically(path, file.certificate);
        }
        return file;
    }
    /** @internal {@link checkoutFile} without the cache. */
    async fetchFile(options) {
        const key = this.#key(options);
        const body = { fingerprint: options.fingerprint };
        if (options.ttlSeconds !== undefined)
            body['ttl_seconds'] = options.ttlSeconds;
        const answer = await this.#request('POST', ['licenses', key, 'checkout'], body);
        if (typeof answer.data?.certificate !== 'string') {
            throw new LicensingError('UNEXPECTED_ANSWER', 'the checkout answer has no certificate', {
                status: answer.status,
                requestId: answer.requestId,
            });
        }
        return this.verifyFile(answer.data.certificate, { fingerprint: options.fingerprint, licenseKey: key });
    }
    /**
     * Verifies a license file's text now, for this tenant and (given one) this machine; with the
     * client's license key, the file must be for it.
     */
    verifyFile(text, options = {}) {
        return verifyLicenseFile(text, {
            keys: this.#keys,
            tenantId: this.tenantId,
            fingerprint: options.fingerprint,
            licenseKey: options.licenseKey ?? this.#licenseKey,
            now: this.now(),
        });
    }
    /**
     * The cached license file, verified now: `null` when nothing is cached; a
     * {@link LicenseFileError} when the cached file does not verify (expired, another machine, ...).
     * Given a fingerprint, the file must be bound to it.
     */
    async offlineLicense(options = {}) {
        const text = await this.readCache();
        return text === null ? null : this.verifyFile(text, { fingerprint: options.fingerprint ?? null });
    }
    /** @internal The cached text, or `null`. */
    async readCache() {
        const path = this.cachePath;
        return path === null ? null : readCached(path);
    }
    /** @internal Writes the cache (no-op without a cache directory). */
    async writeCache(certificate) {
        const path = this.cachePath;
        if (path !== null)
            await writeAtomically(path, certificate);
    }
    /** Removes the cached license file, if any. */
    async clearCache() {
        const path = this.cachePath;
        if (path !== null)
            await removeCached(path);
    }
    /**
     * Validates online; when the service cannot be reached ({@link ServiceUnreachableError}),
     * answers from the cached file instead, if it verifies for this machine. A verified error
     * answer or an unverified answer is thrown as is, never replaced by the file.
     */
    async validateOrOffline(options = {}) {
        try {
            const validation = await this.validate(options);
            return { online: true, valid: validation.valid, validation };
        }
        catch (e) {
            if (!(e instanceof ServiceUnreachableError))
                throw e;
            const file = await this.offlineLicense(options);
            if (file === null)
                throw e;
            return { online: false, valid: true, file };
        }
    }
    /**
     * The recommended use: licensed from the cached file (0 calls) while it verifies and is less
     * than a day old, else from a freshly checked-out file (activating this machine on the first
     * run), else, when the service is unreachable, offline from the cached file while it is valid.
     * See {@link ensureLicensed}.
     */
    async ensureLicensed(options) {
        return runSession(this, options);
    }
    /** Stops every background heartbeat of this client's leases (the leases are not returned). */
    close() {
        for (const lease of this.#leases)
            lease.stop();
        this.#leases.clear();
    }
    // ---- internals ----------------------------------------------------------------------------
    /** @internal Activation, with the answer's signing time (for the lease's length). */
    async activateRenewal(options) {
        return this.#activate(options);
    }
    async #activate(options) {
        const body = {
            license_key: this.#key(options),
            fingerprint: options.fingerprint,
        };
        if (options.name !== undefined)
            body['name'] = options.name;
        if (options.hostname !== undefined)
            body['hostname'] = options.hostname;
        if (options.metadata !== undefined)
            body['metadata'] = options.metadata;
        const answer = await this.#request('POST', ['activations'], body);
        return { activation: answer.data, signedAt: answer.signedAt };
    }
    #key(options) {
        const key = options?.licenseKey ?? this.#licenseKey;
        if (key === undefined || key === '') {
            throw new LicensingError('CONFIG', 'no licenseKey: give one to the client or to the call');
        }
        return key;
    }
    #cachePathFor(options) {
        if (this.cacheDir === undefined)
            return null;
        return join(this.cacheDir, cacheFileName(this.tenantId, this.#key(options)));
    }
    /** Sends one request to `/v1/integration/{segments...}` and returns the verified answer. */
    async #request(method, segments, body, extraHeaders = {}) {
        const url = new URL(this.#base.href);
        const prefix = url.pathname.replace(/\/+$/, '');
        url.pathname = `${prefix}/v1/integration/${segments.map(encodeURIComponent).join('/')}`;
        const pathAndQuery = url.pathname + url.search;
        const nonce = randomBytes(32).toString('hex');
        // Serialised once: the answer's signature covers these exact bytes.
        const sent = body === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(body), 'utf8');
        const headers = {
            accept: 'application/json',
            'x-nonce': nonce,
            ...extraHeaders,
        };
        if (body !== undefined)
            headers['content-type'] = 'application/json';
        if (this.#apiKey !== undefined) {
            headers['x-api-key'] = this.#apiKey;
        }
        else {
            headers['authorization'] = `License ${this.#licenseKey}`;
            headers['x-tenant-id'] = this.tenantId;
        }
        this.#requests += 1;
        let response;
        let bytes;
        try {
            response = await this.#fetch(url.href, {
                method,
                headers,
                ...(body === undefined ? {} : { body: sent }),
                redirect: 'manual',
                signal: AbortSignal.timeout(this.#timeoutMs),
            });
        }
        catch (e) {
            throw new ServiceUnreachableError(`cannot reach the licensing service: ${describe(e)}`, { cause: e });
        }
        const status = response.status;
        const signature = response.headers.get('x-signature');
        const date = response.headers.get('x-signature-date');
        const requestIdHeader = response.headers.get('x-request-id') ?? undefined;
        if (signature === null && status >= 500) {
            // A gateway's answer, not the service's: its body is never read.
            response.arrayBuffer().catch(() => undefined);
            throw new ServiceUnreachableError(`the licensing service is unavailable (HTTP ${status}, unsigned)`, {
                status,
                requestId: requestIdHeader,
            });
        }
        try {
            bytes = Buffer.from(await response.arrayBuffer());
        }
        catch (e) {
            throw new ServiceUnreachableError(`the answer was cut off: ${describe(e)}`, { cause: e, status });
        }
        const verdict = verifyAnswer(this.#keys, { method, pathAndQuery, tenant: this.tenantId, nonce, body: sent }, { signature, date, body: bytes }, { now: this.#checkDates ? this.now() : null });
        if (!verdict.ok) {
            throw new SignatureError(`unverified answer (HTTP ${status}): ${verdict.message}`, {
                status,
                requestId: requestIdHeader,
            });
        }
        let envelope;
        try {
            envelope = JSON.parse(bytes.toString('utf8'));
        }
        catch (e) {
            throw new LicensingError('UNEXPECTED_ANSWER', 'a verified answer is not JSON', {
                status,
                requestId: requestIdHeader,
                cause: e,
            });
        }
        const metaId = envelope?.meta?.request_id;
        const requestId = typeof metaId === 'string' ? metaId : requestIdHeader;
        const signedAt = parseRfc3339(date) ?? this.now();
        if (status >= 200 && status < 300) {
            if (envelope === null || typeof envelope !== 'object' || !('data' in envelope)) {
                throw new LicensingError('UNEXPECTED_ANSWER', 'a verified answer has no data', { status, requestId });
            }
            return { data: envelope.data, status, signedAt, requestId };
        }
        const error = envelope?.error;
        const code = typeof error?.['code'] === 'string' ? error['code'] : `HTTP_${status}`;
        const message = typeof error?.['message'] === 'string' ? error['message'] : `HTTP ${status}`;
        throw errorForCode(code, message, { status, requestId, details: error });
    }
}
function describe(e) {
    if (e instanceof Error) {
        const cause = e.cause;
        return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
    }
    return String(e);
}

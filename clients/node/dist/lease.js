/**
 * Keeping an activation alive in the background: a floating lease renewed at a third of its
 * length, or a node-locked seat whose policy sets `heartbeat_seconds`. The timer is `unref`'d, so
 * it never keeps a Node.js process (or Electron's main process) alive on its own.
 */
import { EventEmitter } from 'node:events';
import { LicensingError } from './errors.js';
import { parseRfc3339 } from './time.js';
/** The shortest interval chosen automatically between two heartbeats. */
export const MIN_HEARTBEAT_INTERVAL_MS = 1000;
/** Codes after which an activation is gone and heartbeats stop: check out (or activate) again. */
const LOST_CODES = new Set(['LEASE_EXPIRED', 'ACTIVATION_NOT_FOUND']);
/**
 * Heartbeats of one activation, every `interval` (the first one an interval after {@link start}).
 * Failures do not stop them, except a lost activation (the `lost` event). Emits `heartbeat`,
 * `heartbeatError` and `lost`; never `error`, so an app need not listen.
 */
export class Heartbeats extends EventEmitter {
    /** The activation renewed. */
    activationId;
    /** The latest activation the service answered; `null` before the first answer. */
    activation;
    /** The error of the latest heartbeat, `null` after a successful one. */
    lastError = null;
    /** Whether the activation was lost (see the `lost` event). */
    lost = false;
    #sender;
    #fixedIntervalMs;
    #signedAt;
    #timer = null;
    #running = false;
    /**
     * @internal Made by the client: for `activationId`, whose latest answer is `renewal` (`null`
     * when none is at hand, as for a seat known from a license file).
     */
    constructor(sender, activationId, renewal, intervalMs) {
        super();
        this.#sender = sender;
        this.activationId = activationId;
        this.activation = renewal?.activation ?? null;
        this.#signedAt = renewal?.signedAt ?? 0;
        if (intervalMs !== undefined && !(Number.isFinite(intervalMs) && intervalMs > 0)) {
            throw new LicensingError('CONFIG', 'the heartbeat interval must be a positive number of milliseconds');
        }
        this.#fixedIntervalMs = intervalMs;
    }
    /**
     * The time between two heartbeats: the one given, else a third of the lease's length (its
     * `lease_expires_at` minus the time the service signed the answer, both on the service's clock),
     * at least {@link MIN_HEARTBEAT_INTERVAL_MS}; `null` when neither is known (a node-locked seat
     * with no interval given).
     */
    get intervalMs() {
        if (this.#fixedIntervalMs !== undefined)
            return this.#fixedIntervalMs;
        const expires = parseRfc3339(this.activation?.lease_expires_at);
        if (expires === null)
            return null;
        return Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.floor((expires - this.#signedAt) / 3));
    }
    /** Whether the timer runs. */
    get running() {
        return this.#running;
    }
    /** Starts the timer (a no-op if it runs, or if no interval is known). */
    start() {
        if (!this.#running && !this.lost && this.intervalMs !== null) {
            this.#running = true;
            this.#schedule();
        }
        return this;
    }
    /** Stops the timer; a heartbeat in flight still completes but schedules no other. */
    stop() {
        this.#running = false;
        if (this.#timer !== null) {
            clearTimeout(this.#timer);
            this.#timer = null;
        }
    }
    /** Sends one heartbeat now (outside the timer); throws what it fails with. */
    async beat() {
        try {
            const renewal = await this.#sender.heartbeat(this.activationId);
            this.activation = renewal.activation;
            this.#signedAt = renewal.signedAt;
            this.lastError = null;
            this.emit('heartbeat', renewal.activation);
            return renewal.activation;
        }
        catch (e) {
            const error = e instanceof LicensingError ? e : new LicensingError('UNEXPECTED', String(e), { cause: e });
            this.lastError = error;
            if (LOST_CODES.has(error.code)) {
                this.lost = true;
                this.stop();
                this.emit('lost', error);
            }
            else {
                this.emit('heartbeatError', error);
            }
            throw error;
        }
    }
    #schedule() {
        const ms = this.intervalMs;
        if (!this.#running || ms === null)
            return;
        this.#timer = setTimeout(() => {
            this.#timer = null;
            this.beat().then(() => this.#schedule(), () => this.#schedule());
        }, ms);
        // Never keeps the process alive (guarded: an Electron renderer's timers are numbers).
        this.#timer.unref?.();
    }
}
/**
 * A floating lease checked out by {@link LicenseClient.checkout}: it holds one seat of the pool
 * until returned or lapsed, renewed in the background at a third of its length. {@link return}
 * gives the seat back; {@link stop} only stops renewing it (it lapses at `leaseExpiresAt`).
 */
export class Lease extends Heartbeats {
    /** Who holds it (the fingerprint the lease was checked out with). */
    user;
    #host;
    #returned = false;
    /** @internal Made by {@link LicenseClient.checkout}. */
    constructor(host, user, renewal, intervalMs) {
        super(host, renewal.activation.id, renewal, intervalMs);
        this.#host = host;
        this.user = user;
        this.activation = renewal.activation;
    }
    /** The lease's (activation's) id, for {@link LicenseClient.returnLicense}. */
    get id() {
        return this.activationId;
    }
    /** The license it is a seat of. */
    get licenseId() {
        return this.activation.license_id;
    }
    /** Whether it was granted beyond the license's `max_activations` (an overage seat). */
    get overage() {
        return this.activation.overage === true;
    }
    /** When it lapses unless renewed (as of the latest answer); `null` for a node-locked seat. */
    get leaseExpiresAt() {
        const ms = parseRfc3339(this.activation.lease_expires_at);
        return ms === null ? null : new Date(ms);
    }
    /** Whether {@link return} completed. */
    get returned() {
        return this.#returned;
    }
    /** Stops the heartbeats and returns the lease (its seat is free at once). Repeating it is harmless. */
    async return() {
        this.stop();
        const activation = await this.#host.returnLicense(this.id);
        this.activation = activation;
        this.#returned = true;
        this.#host.forget(this);
        return activation;
    }
}

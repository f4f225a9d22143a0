/**
 * Keeping an activation alive in the background: a floating lease renewed at a third of its
 * length, or a node-locked seat whose policy sets `heartbeat_seconds`. The timer is `unref`'d, so
 * it never keeps a Node.js process (or Electron's main process) alive on its own.
 */
import { EventEmitter } from 'node:events';
import { LicensingError } from './errors.js';
import type { Activation } from './types.js';
/** The shortest interval chosen automatically between two heartbeats. */
export declare const MIN_HEARTBEAT_INTERVAL_MS = 1000;
/** A verified heartbeat (or checkout) answer, and when the service signed it (its clock). */
export interface Renewal {
    activation: Activation;
    /** `X-Signature-Date` of the answer, in milliseconds since the epoch. */
    signedAt: number;
}
/** @internal What the heartbeats need from the client. */
export interface HeartbeatSender {
    heartbeat(activationId: string): Promise<Renewal>;
}
/** The events of {@link Heartbeats} (and {@link Lease}). */
export interface HeartbeatEvents {
    /** A heartbeat renewed the activation. */
    heartbeat: [activation: Activation];
    /** A heartbeat failed (the service unreachable, a refusal): the next one is tried as planned. */
    heartbeatError: [error: LicensingError];
    /**
     * The activation is gone (`LEASE_EXPIRED`: lapsed, returned or reclaimed; `ACTIVATION_NOT_FOUND`):
     * the heartbeats have stopped. Check out again.
     */
    lost: [error: LicensingError];
}
/**
 * Heartbeats of one activation, every `interval` (the first one an interval after {@link start}).
 * Failures do not stop them, except a lost activation (the `lost` event). Emits `heartbeat`,
 * `heartbeatError` and `lost`; never `error`, so an app need not listen.
 */
export declare class Heartbeats extends EventEmitter<HeartbeatEvents> {
    #private;
    /** The activation renewed. */
    readonly activationId: string;
    /** The latest activation the service answered; `null` before the first answer. */
    activation: Activation | null;
    /** The error of the latest heartbeat, `null` after a successful one. */
    lastError: LicensingError | null;
    /** Whether the activation was lost (see the `lost` event). */
    lost: boolean;
    /**
     * @internal Made by the client: for `activationId`, whose latest answer is `renewal` (`null`
     * when none is at hand, as for a seat known from a license file).
     */
    constructor(sender: HeartbeatSender, activationId: string, renewal: Renewal | null, intervalMs: number | undefined);
    /**
     * The time between two heartbeats: the one given, else a third of the lease's length (its
     * `lease_expires_at` minus the time the service signed the answer, both on the service's clock),
     * at least {@link MIN_HEARTBEAT_INTERVAL_MS}; `null` when neither is known (a node-locked seat
     * with no interval given).
     */
    get intervalMs(): number | null;
    /** Whether the timer runs. */
    get running(): boolean;
    /** Starts the timer (a no-op if it runs, or if no interval is known). */
    start(): this;
    /** Stops the timer; a heartbeat in flight still completes but schedules no other. */
    stop(): void;
    /** Sends one heartbeat now (outside the timer); throws what it fails with. */
    beat(): Promise<Activation>;
}
/** @internal What a lease needs from the client. */
export interface LeaseHost extends HeartbeatSender {
    returnLicense(activationId: string): Promise<Activation>;
    forget(lease: Lease): void;
}
/**
 * A floating lease checked out by {@link LicenseClient.checkout}: it holds one seat of the pool
 * until returned or lapsed, renewed in the background at a third of its length. {@link return}
 * gives the seat back; {@link stop} only stops renewing it (it lapses at `leaseExpiresAt`).
 */
export declare class Lease extends Heartbeats {
    #private;
    /** Who holds it (the fingerprint the lease was checked out with). */
    readonly user: string;
    /** @internal Made by {@link LicenseClient.checkout}. */
    constructor(host: LeaseHost, user: string, renewal: Renewal, intervalMs: number | undefined);
    /** The latest activation the service answered for the lease. */
    activation: Activation;
    /** The lease's (activation's) id, for {@link LicenseClient.returnLicense}. */
    get id(): string;
    /** The license it is a seat of. */
    get licenseId(): string;
    /** Whether it was granted beyond the license's `max_activations` (an overage seat). */
    get overage(): boolean;
    /** When it lapses unless renewed (as of the latest answer); `null` for a node-locked seat. */
    get leaseExpiresAt(): Date | null;
    /** Whether {@link return} completed. */
    get returned(): boolean;
    /** Stops the heartbeats and returns the lease (its seat is free at once). Repeating it is harmless. */
    return(): Promise<Activation>;
}

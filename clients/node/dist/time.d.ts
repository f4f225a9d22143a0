/** RFC 3339 timestamps and the injectable clock. */
/** A clock: milliseconds since the epoch, or a `Date`. `Date.now` is the default. */
export type Clock = () => number | Date;
/** The time `clock` says, in milliseconds since the epoch. */
export declare function nowMs(clock: Clock): number;
/**
 * Milliseconds since the epoch of an RFC 3339 date-time (`2026-11-30T12:00:00.000Z`, any offset,
 * up to nanoseconds: sub-millisecond digits are kept as a fraction), or `null` when `text` is not
 * one (a calendar date that does not exist, such as February 30th, included).
 */
export declare function parseRfc3339(text: unknown): number | null;
/** `ms` as RFC 3339 UTC with milliseconds (`2026-11-30T12:00:00.000Z`). */
export declare function formatRfc3339(ms: number): string;

/** RFC 3339 timestamps and the injectable clock. */
/** The time `clock` says, in milliseconds since the epoch. */
export function nowMs(clock) {
    const now = clock();
    const ms = now instanceof Date ? now.getTime() : now;
    if (typeof ms !== 'number' || !Number.isFinite(ms)) {
        throw new TypeError('the clock must return a Date or a finite number of milliseconds');
    }
    return ms;
}
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
/**
 * Milliseconds since the epoch of an RFC 3339 date-time (`2026-11-30T12:00:00.000Z`, any offset,
 * up to nanoseconds: sub-millisecond digits are kept as a fraction), or `null` when `text` is not
 * one (a calendar date that does not exist, such as February 30th, included).
 */
export function parseRfc3339(text) {
    if (typeof text !== 'string')
        return null;
    const m = RFC3339.exec(text);
    if (m === null)
        return null;
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
    if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
        return null;
    const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
    if (day > daysInMonth)
        return null;
    let offsetMinutes = 0;
    if (m[8] === undefined) {
        const oh = Number(m[10]);
        const om = Number(m[11]);
        if (oh > 23 || om > 59)
            return null;
        offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
    }
    const base = Date.UTC(year, month - 1, day, hour, minute, second);
    // Date.UTC maps years 0-99 to 1900-1999: set the full year explicitly.
    const date = new Date(base);
    date.setUTCFullYear(year);
    const fraction = m[7] === undefined ? 0 : Number(`0${m[7]}`) * 1000;
    return date.getTime() + fraction - offsetMinutes * 60_000;
}
/** `ms` as RFC 3339 UTC with milliseconds (`2026-11-30T12:00:00.000Z`). */
export function formatRfc3339(ms) {
    return new Date(ms).toISOString();
}

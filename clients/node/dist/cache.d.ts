/** The offline license file's cache: one file per (tenant, license), written atomically. */
/**
 * Where the file of this tenant and license is cached in `dir`: `license-<32 hex>.lic`, named by
 * the SHA-256 of `tenant \0 key` so the key does not appear in the name. The same name as the Rust
 * client's, so the libraries share a cache directory.
 */
export declare function cacheFileName(tenantId: string, licenseKey: string): string;
/** The cached text, or `null` when there is none. */
export declare function readCached(path: string): Promise<string | null>;
/**
 * Writes `contents` to a new temporary file beside `path` (owner-only), flushes it to disk and
 * renames it over `path`: a reader sees the old file or the new one, never a part of one.
 */
export declare function writeAtomically(path: string, contents: string): Promise<void>;
/** Removes the cached file, if any. */
export declare function removeCached(path: string): Promise<void>;

/** The offline license file's cache: one file per (tenant, license), written atomically. */

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Where the file of this tenant and license is cached in `dir`: `license-<32 hex>.lic`, named by
 * the SHA-256 of `tenant \0 key` so the key does not appear in the name. The same name as the Rust
 * client's, so the libraries share a cache directory.
 */
export function cacheFileName(tenantId: string, licenseKey: string): string {
  const digest = createHash('sha256')
    .update(Buffer.from(tenantId, 'utf8'))
    .update(Buffer.from([0]))
    .update(Buffer.from(licenseKey, 'utf8'))
    .digest('hex');
  return `license-${digest.slice(0, 32)}.lic`;
}

/** The cached text, or `null` when there is none. */
export async function readCached(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Writes `contents` to a new temporary file beside `path` (owner-only), flushes it to disk and
 * renames it over `path`: a reader sees the old file or the new one, never a part of one.
 */
export async function writeAtomically(path: string, contents: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(contents, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Removes the cached file, if any. */
export async function removeCached(path: string): Promise<void> {
  await rm(path, { force: true });
}

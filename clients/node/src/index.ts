/**
 * The client that Node.js and Electron apps embed to talk to the licensing service.
 *
 * - {@link LicenseClient}: validate, activate/deactivate, floating leases ({@link LicenseClient.checkout}
 *   → {@link Lease}, renewed in the background), usage records, entitlement checks and offline
 *   license files, with a license key as credential.
 * - {@link ensureLicensed}: the recommended use; a node-locked app makes one call a day.
 * - Every answer is verified (signature version 2) against keys pinned at build time, over the
 *   exact bytes sent, before it is read; {@link verifyAnswer} and {@link verifyLicenseFile} are
 *   the verifiers themselves.
 *
 * No runtime dependencies: `node:crypto` (Ed25519), the global `fetch`, `node:fs/promises`.
 */

export {
  LicenseClient,
  DEFAULT_TIMEOUT_MS,
  type LicenseClientOptions,
  type LicenseKeyOption,
  type FetchLike,
  type FetchResponse,
  type Verdict,
} from './client.js';
export {
  ensureLicensed,
  REFRESH_AFTER_MS,
  DEFAULT_FILE_TTL_SECONDS,
  type EnsureLicensedOptions,
  type EnsureLicensedSettings,
  type Licensed,
  type LicensedWithClient,
} from './session.js';
export { Lease, Heartbeats, MIN_HEARTBEAT_INTERVAL_MS, type HeartbeatEvents, type Renewal } from './lease.js';
export {
  LicensingError,
  LicenseUnavailableError,
  OverageMaxExceededError,
  SignatureError,
  ServiceUnreachableError,
  LicenseFileError,
  type LicenseFileReason,
  type LicensingErrorOptions,
} from './errors.js';
export { PinnedKeys, type PublicKeys, type Verified } from './keys.js';
export {
  verifyAnswer,
  signedMessage,
  parseSignatureHeader,
  SIGNATURE_VERSION,
  SIGNATURE_CONTEXT,
  MAX_ANSWER_SKEW_MS,
  type SentRequest,
  type ReceivedAnswer,
  type SignatureHeader,
  type AnswerVerdict,
  type AnswerRefusal,
  type VerifyAnswerOptions,
} from './signature.js';
export {
  verifyLicenseFile,
  LicenseFile,
  FILE_FORMAT,
  MAX_CLOCK_SKEW_MS,
  type LicenseFilePayload,
  type FileLicense,
  type FileEntitlement,
  type VerifyFileOptions,
} from './file.js';
export { cacheFileName } from './cache.js';
export { parseRfc3339, type Clock } from './time.js';
export type {
  Activation,
  CheckoutAnswer,
  EntitlementCheck,
  EntitlementResult,
  License,
  UsageRecord,
  Validation,
  ValidationCode,
} from './types.js';

// Compiled with `tsc --noEmit` by test.sh (never run): the shipped declarations (dist/*.d.ts) as
// an app written in TypeScript sees them. A line marked @ts-expect-error must not compile.

import {
  LicenseClient,
  LicenseFileError,
  LicenseUnavailableError,
  LicensingError,
  OverageMaxExceededError,
  ServiceUnreachableError,
  SignatureError,
  ensureLicensed,
  verifyLicenseFile,
  type Activation,
  type Lease,
  type Licensed,
  type LicensedWithClient,
  type UsageRecord,
  type Validation,
} from '@licensing/client';

export async function app(): Promise<void> {
  const client = new LicenseClient({
    serverUrl: 'https://licensing.example.com',
    tenantId: 'acme',
    licenseKey: 'SHD02-RH6CA-MVCWT-XQXJT-DCBR3',
    publicKeys: { v1: 'cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=' },
    productId: 'desktop',
    cacheDir: '/tmp/acme',
    clock: () => new Date(),
  });
  const v: Validation = await client.validate({ fingerprint: 'fp', entitlements: ['export-4k'] });
  const valid: boolean = v.valid;
  const seats: number | undefined = v.license?.seats.limit;
  const a: Activation = await client.activate({ fingerprint: 'fp', name: 'Ann' });
  const expires: string | null = a.lease_expires_at;
  await client.deactivate({ fingerprint: 'fp' });

  const lease: Lease = await client.checkout({ user: 'ann' });
  const id: string = lease.id;
  const until: Date | null = lease.leaseExpiresAt;
  lease.on('heartbeat', (renewed: Activation) => void renewed.lease_expires_at);
  lease.on('lost', (e: LicensingError) => void e.code);
  // @ts-expect-error: no such event
  lease.on('renewed', () => undefined);
  await lease.return();
  await client.returnLicense(id);

  const usage: UsageRecord = await client.recordUsage({ metric: 'api-calls', quantity: 3, idempotencyKey: 'k' });
  const remaining: number = usage.remaining;
  // @ts-expect-error: quantity is a number
  await client.recordUsage({ metric: 'api-calls', quantity: '3' });

  const file = await client.checkoutFile({ fingerprint: 'fp', ttlSeconds: 86400 });
  const granted: boolean = file.hasEntitlement('export-4k');
  const verified = verifyLicenseFile(file.certificate, { keys: client.keys, tenantId: 'acme', now: Date.now() });
  const fp: string | null = verified.fingerprint;

  const licensed: LicensedWithClient = await ensureLicensed({
    serverUrl: 'https://licensing.example.com',
    tenantId: 'acme',
    licenseKey: 'SHD02-RH6CA-MVCWT-XQXJT-DCBR3',
    publicKeys: { v1: 'cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=' },
    cacheDir: '/tmp/acme',
    fingerprint: 'fp',
  });
  const source: 'cache' | 'online' | 'offline' = licensed.source;
  const again: Licensed = await licensed.client.ensureLicensed({ fingerprint: 'fp' });
  // @ts-expect-error: the stand-alone form needs a cache directory
  await ensureLicensed({ serverUrl: 'x', tenantId: 'acme', licenseKey: 'k', publicKeys: {}, fingerprint: 'fp' });

  try {
    await client.validate();
  } catch (e) {
    if (e instanceof LicenseUnavailableError) void (e.limit satisfies number | undefined);
    if (e instanceof OverageMaxExceededError) void e.status;
    if (e instanceof SignatureError) void e.requestId;
    if (e instanceof ServiceUnreachableError) void e.cause;
    if (e instanceof LicenseFileError) void (e.reason satisfies string);
    if (e instanceof LicensingError) void (e.code satisfies string);
  }
  void [valid, seats, expires, until, remaining, granted, fp, source, again];
  // @ts-expect-error: publicKeys is required
  new LicenseClient({ serverUrl: 'https://x', tenantId: 'acme', licenseKey: 'k' });
}

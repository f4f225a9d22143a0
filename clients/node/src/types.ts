/**
 * What the service answers (`data` of the envelope), as docs/api.md documents it. Field names are
 * the service's own (snake_case), so the reference applies as is; answers may carry more fields.
 */

/** The result code of validate; the first that applies wins. */
export type ValidationCode =
  | 'VALID'
  | 'NOT_FOUND'
  | 'SUSPENDED'
  | 'CANCELLED'
  | 'EXPIRED'
  | 'PRODUCT_MISMATCH'
  | 'HEARTBEAT_DEAD'
  | 'NO_ACTIVATION'
  | 'ENTITLEMENTS_MISSING'
  | (string & {});

/** A license as validate shows it. */
export interface License {
  id: string;
  key: string;
  /** `active`, `suspended`, `cancelled`, `expired`, `past_due`. */
  status: string;
  product: string;
  policy: string;
  customer_email?: string | null;
  expires_at: string | null;
  grace_until?: string | null;
  /** Node-locked `{limit, used}`; floating `{limit, used, overage_limit, overage_used}`. */
  seats: { limit: number; used?: number | null; overage_limit?: number; overage_used?: number | null };
  activation_mode?: 'node_locked' | 'floating' | (string & {});
  lease_seconds?: number | null;
  heartbeat_seconds?: number | null;
  max_deactivations?: { count: number; period: string } | null;
  /** `true` for a boolean feature, `{limit, used, period}` for a metered one. */
  entitlements: Record<string, true | { limit: number; used?: number; period: string; [field: string]: unknown }>;
  metadata?: Record<string, unknown>;
  created_at?: string;
  updated_at?: string;
  [field: string]: unknown;
}

/** The answer of validate. */
export interface Validation {
  valid: boolean;
  code: ValidationCode;
  detail?: string;
  /** `null` when `code` is `NOT_FOUND`. */
  license: License | null;
  [field: string]: unknown;
}

/** An activation: a machine's seat, or on a floating license a lease. */
export interface Activation {
  id: string;
  license_id: string;
  fingerprint: string;
  name?: string | null;
  hostname?: string | null;
  metadata?: Record<string, unknown>;
  /** `active`, `deactivated`, `expired` (a lapsed lease). */
  status: string;
  created_at?: string;
  last_activated_at?: string;
  deactivated_at?: string | null;
  /** Floating: when the lease lapses unless renewed; `null` for a node-locked seat. */
  lease_expires_at: string | null;
  /** Floating: granted beyond `max_activations`. */
  overage: boolean;
  last_heartbeat_at?: string | null;
  [field: string]: unknown;
}

/** The answer of a usage record. */
export interface UsageRecord {
  metric: string;
  quantity: number;
  /** `YYYY-MM-DD`, `YYYY-MM` or `total`. */
  period: string;
  period_type: 'day' | 'month' | 'total' | (string & {});
  timestamp: string;
  used: number;
  limit: number;
  remaining: number;
  overage: number;
  overage_policy: 'deny' | 'allow' | (string & {});
  resets_at: string | null;
  license_id: string;
  [field: string]: unknown;
}

/** One feature's result in an entitlement check. */
export interface EntitlementResult {
  granted: boolean;
  type: 'boolean' | 'metered' | null;
  reason?: string;
  limit?: number;
  used?: number;
  remaining?: number;
  overage?: number;
  overage_policy?: string;
  period?: string;
  resets_at?: string | null;
  [field: string]: unknown;
}

/** The answer of an entitlement check. */
export interface EntitlementCheck {
  license_valid: boolean;
  code: ValidationCode;
  results: Record<string, EntitlementResult>;
  [field: string]: unknown;
}

/** The answer of a license file checkout (the library reads the file itself from `certificate`). */
export interface CheckoutAnswer {
  certificate: string;
  issued_at: string;
  expires_at: string;
  kid: string;
  [field: string]: unknown;
}

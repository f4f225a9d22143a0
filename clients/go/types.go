package licensing

import (
	"encoding/json"
	"time"
)

// Validation is the answer of Validate.
type Validation struct {
	Valid   bool           `json:"valid"`  // the license may be used (Code is VALID)
	Code    ValidationCode `json:"code"`   // why, in the service's order of precedence
	Detail  string         `json:"detail"` // a human sentence
	License *License       `json:"license"`
}

// ValidationCode is the result code of Validate.
type ValidationCode string

// The validation codes (docs/api.md); a code this version does not know is kept as sent.
const (
	CodeValid               ValidationCode = "VALID"
	CodeNotFound            ValidationCode = "NOT_FOUND"
	CodeSuspended           ValidationCode = "SUSPENDED"
	CodeCancelled           ValidationCode = "CANCELLED"
	CodeExpired             ValidationCode = "EXPIRED"
	CodeProductMismatch     ValidationCode = "PRODUCT_MISMATCH"
	CodeHeartbeatDead       ValidationCode = "HEARTBEAT_DEAD"
	CodeNoActivation        ValidationCode = "NO_ACTIVATION"
	CodeEntitlementsMissing ValidationCode = "ENTITLEMENTS_MISSING"
)

// License is a license as validate answers it (and, with fewer fields, as license files hold it).
type License struct {
	ID               string                     `json:"id"`
	Key              string                     `json:"key"`
	Status           string                     `json:"status"` // active, suspended, cancelled, expired, past_due
	Product          string                     `json:"product"`
	Policy           string                     `json:"policy"`
	CustomerEmail    string                     `json:"customer_email,omitempty"`
	ExpiresAt        *time.Time                 `json:"expires_at"` // nil: perpetual
	GraceUntil       *time.Time                 `json:"grace_until,omitempty"`
	Seats            Seats                      `json:"seats"`
	ActivationMode   string                     `json:"activation_mode,omitempty"` // node_locked or floating
	LeaseSeconds     *int64                     `json:"lease_seconds,omitempty"`
	HeartbeatSeconds *int64                     `json:"heartbeat_seconds,omitempty"`
	Entitlements     map[string]json.RawMessage `json:"entitlements"`
	Metadata         map[string]json.RawMessage `json:"metadata,omitempty"`
}

// HasEntitlement reports whether feature is granted: present and neither false nor null.
func (l *License) HasEntitlement(feature string) bool {
	if l == nil {
		return false
	}
	spec, ok := l.Entitlements[feature]
	if !ok {
		return false
	}
	var v any
	if json.Unmarshal(spec, &v) != nil {
		return false
	}
	return v != nil && v != false
}

// Seats of a license. Used figures are nil where the service does not count them (license files).
type Seats struct {
	Limit        *int64 `json:"limit"`
	Used         *int64 `json:"used,omitempty"`
	OverageLimit *int64 `json:"overage_limit,omitempty"` // floating only: max_overage
	OverageUsed  *int64 `json:"overage_used,omitempty"`
}

// Activation is a seat of a machine, or on a floating license a lease.
type Activation struct {
	ID              string     `json:"id"`
	LicenseID       string     `json:"license_id"`
	Fingerprint     string     `json:"fingerprint"`
	Name            *string    `json:"name"`
	Hostname        *string    `json:"hostname"`
	Status          string     `json:"status"` // active, deactivated, expired
	CreatedAt       *time.Time `json:"created_at"`
	DeactivatedAt   *time.Time `json:"deactivated_at"`
	LeaseExpiresAt  *time.Time `json:"lease_expires_at"` // floating: when the lease lapses unless renewed
	Overage         bool       `json:"overage"`          // floating: granted beyond the seat limit
	LastHeartbeatAt *time.Time `json:"last_heartbeat_at"`
}

// UsageRecord is the answer of RecordUsage: the period's totals after the record.
type UsageRecord struct {
	Metric        string     `json:"metric"`
	Quantity      int64      `json:"quantity"`
	Period        string     `json:"period"`      // 2026-11, 2026-11-23 or total
	PeriodType    string     `json:"period_type"` // day, month or total
	Timestamp     time.Time  `json:"timestamp"`
	Used          int64      `json:"used"`
	Limit         int64      `json:"limit"`
	Remaining     int64      `json:"remaining"`
	Overage       int64      `json:"overage"`
	OveragePolicy string     `json:"overage_policy"` // deny or allow
	ResetsAt      *time.Time `json:"resets_at"`
	LicenseID     string     `json:"license_id"`
	// Replayed is true when the service answered a stored record for the same idempotency key
	// (Idempotent-Replayed: true): nothing was counted again.
	Replayed bool `json:"-"`
}

// EntitlementCheck is the answer of CheckEntitlements.
type EntitlementCheck struct {
	LicenseValid bool                         `json:"license_valid"`
	Code         ValidationCode               `json:"code"`
	Results      map[string]EntitlementResult `json:"results"`
}

// EntitlementResult is one feature of an EntitlementCheck.
type EntitlementResult struct {
	Granted   bool    `json:"granted"`
	Type      *string `json:"type"` // boolean, metered, or nil when not defined
	Reason    string  `json:"reason,omitempty"`
	Limit     *int64  `json:"limit,omitempty"`
	Used      *int64  `json:"used,omitempty"`
	Remaining *int64  `json:"remaining,omitempty"`
}

type checkoutAnswer struct {
	Certificate string `json:"certificate"`
}

type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Type    string `json:"type"`
		Status  int    `json:"status"`
		Limit   *int64 `json:"limit"`
	} `json:"error"`
	Meta struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
}

package licensing

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, to test with errors.Is.
var (
	// ErrSignature: an answer's signature is missing, malformed, by a key that is not pinned,
	// does not verify for the request that was sent, or is dated more than MaxClockSkew from the
	// clock. Nothing of the answer was used. Never a reason to fall back to the offline file.
	ErrSignature = errors.New("licensing: the answer's signature does not verify")

	// ErrUnreachable: the service could not be reached — a transport error (DNS, connection,
	// TLS, timeout, a cut body), a 5xx without a signature (a gateway's, not the service's), or
	// the service's own signed 5xx (500 INTERNAL_ERROR, 503 SERVICE_UNAVAILABLE). These are the
	// only errors EnsureLicensed answers from the cached file.
	ErrUnreachable = errors.New("licensing: the licensing service is unreachable")

	// ErrLicenseUnavailable: no seat is free (409 TOO_MANY_ACTIVATIONS): every seat of a
	// node-locked license is taken, or every committed and overage seat of a floating pool is
	// held by an unexpired lease.
	ErrLicenseUnavailable = errors.New("licensing: no seat of the license is available")

	// ErrOverageMaxExceeded: a floating checkout was refused although the pool allows overage
	// seats, because those are all held too (max_activations + max_overage leases are out). It
	// also matches ErrLicenseUnavailable.
	ErrOverageMaxExceeded = errors.New("licensing: every overage seat of the floating license is in use")

	// ErrLeaseExpired: a heartbeat for a floating lease that lapsed, was returned or was
	// reclaimed (409 LEASE_EXPIRED): check out again.
	ErrLeaseExpired = errors.New("licensing: the lease expired")

	// ErrNoActivation: this machine holds no seat on the license (409 NO_ACTIVATION of a file
	// checkout): activate it first.
	ErrNoActivation = errors.New("licensing: this machine holds no seat on the license")

	// ErrLicenseNotActive: the license is suspended, cancelled or expired (403 LICENSE_NOT_ACTIVE).
	ErrLicenseNotActive = errors.New("licensing: the license is not active")

	// ErrNoOfflineLicense: no license file is cached (no cache directory, or no checkout yet).
	ErrNoOfflineLicense = errors.New("licensing: no offline license file is cached")

	// ErrInvalidFile: a license file failed verification; the error is a *FileError.
	ErrInvalidFile = errors.New("licensing: invalid license file")
)

// Error is a verified error answer of the service: its HTTP status and its envelope.
type Error struct {
	Status    int    // the HTTP status, such as 409
	Code      string // the error code, such as "TOO_MANY_ACTIVATIONS" or "LEASE_EXPIRED"
	Message   string // a human sentence
	Type      string // the error type, such as "conflict_error"
	RequestID string // meta.request_id, for support
	// Limit is error.limit of TOO_MANY_ACTIVATIONS (the seat limit; floating:
	// max_activations + max_overage) and of QUOTA_EXCEEDED, else nil.
	Limit *int64
	// RetryAfter is the Retry-After header of a 429 or 503, zero when absent.
	RetryAfter time.Duration

	// overage is set on a floating checkout refused although the pool has overage seats.
	overage bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("licensing: %d %s: %s (request %s)", e.Status, e.Code, e.Message, e.RequestID)
}

// Is makes errors.Is(err, ErrLicenseUnavailable) and the other sentinels work on an *Error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrLicenseUnavailable:
		return e.Code == "TOO_MANY_ACTIVATIONS"
	case ErrOverageMaxExceeded:
		return e.Code == "TOO_MANY_ACTIVATIONS" && e.overage
	case ErrLeaseExpired:
		return e.Code == "LEASE_EXPIRED"
	case ErrNoActivation:
		return e.Code == "NO_ACTIVATION"
	case ErrLicenseNotActive:
		return e.Code == "LICENSE_NOT_ACTIVE"
	case ErrUnreachable:
		return e.Status >= 500
	}
	return false
}

// SignatureReason says why an answer's signature was refused.
type SignatureReason string

// The reasons of a SignatureError.
const (
	SigMissing    SignatureReason = "missing"     // no X-Signature or no X-Signature-Date
	SigMalformed  SignatureReason = "malformed"   // not version 2, not ed25519, bad base64, repeated parameter...
	SigUnknownKey SignatureReason = "unknown_key" // the keyid is not pinned
	SigMismatch   SignatureReason = "mismatch"    // does not verify for what was sent and received
	SigStale      SignatureReason = "stale"       // X-Signature-Date more than MaxClockSkew from the clock
)

// SignatureError is an answer refused by VerifyAnswer. It matches ErrSignature.
type SignatureError struct {
	Reason SignatureReason
	Detail string
	Status int // the HTTP status of the refused answer, when it came from a request
}

func (e *SignatureError) Error() string {
	return "licensing: unverified answer: " + e.Detail
}

// Is makes errors.Is(err, ErrSignature) true.
func (e *SignatureError) Is(target error) bool { return target == ErrSignature }

func sigErr(reason SignatureReason, detail string) *SignatureError {
	return &SignatureError{Reason: reason, Detail: detail}
}

// UnreachableError is a request that got no usable answer: a transport error (Err), or a 5xx
// without a signature (Status). It matches ErrUnreachable.
type UnreachableError struct {
	Status int   // the unsigned 5xx status, or 0 for a transport error
	Err    error // the transport error, or nil
}

func (e *UnreachableError) Error() string {
	if e.Err != nil {
		return "licensing: cannot reach the licensing service: " + e.Err.Error()
	}
	return fmt.Sprintf("licensing: the licensing service is unavailable (HTTP %d, unsigned)", e.Status)
}

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// FileProblem says why a license file was refused; each check of the format has its own.
type FileProblem string

// The problems of a FileError, in the order the checks run.
const (
	FileMalformed         FileProblem = "malformed"          // no armor, not payload.signature, bad base64url, not the expected JSON
	FileUnknownKey        FileProblem = "unknown_key"        // the payload's kid is not pinned
	FileBadSignature      FileProblem = "bad_signature"      // the signature does not verify with that key
	FileUnsupportedFormat FileProblem = "unsupported_format" // format is not licensing-file/v1
	FileWrongTenant       FileProblem = "wrong_tenant"       // issued for another tenant
	FileExpired           FileProblem = "expired"            // the file, or the license in it, has expired
	FileNotYetValid       FileProblem = "not_yet_valid"      // issued_at more than MaxClockSkew ahead of the clock
	FileWrongFingerprint  FileProblem = "wrong_fingerprint"  // bound to another machine
	FileUnbound           FileProblem = "unbound"            // a fingerprint was given and the file is bound to none
	FileWrongLicense      FileProblem = "wrong_license"      // for another license than the client's
)

// FileError is a license file refused by VerifyLicenseFile. It matches ErrInvalidFile.
type FileError struct {
	Problem FileProblem
	Detail  string
}

func (e *FileError) Error() string { return "licensing: license file: " + e.Detail }

// Is makes errors.Is(err, ErrInvalidFile) true.
func (e *FileError) Is(target error) bool { return target == ErrInvalidFile }

func fileErr(problem FileProblem, format string, args ...any) *FileError {
	return &FileError{Problem: problem, Detail: fmt.Sprintf(format, args...)}
}

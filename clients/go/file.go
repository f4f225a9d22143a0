package licensing

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode"
)

const (
	// FileFormat is the format of the license files this client reads.
	FileFormat = "licensing-file/v1"
	fileBegin  = "-----BEGIN LICENSE FILE-----"
	fileEnd    = "-----END LICENSE FILE-----"
)

// LicenseFile is a verified offline license file.
type LicenseFile struct {
	Format   string `json:"format"`
	TenantID string `json:"tenant_id"`
	KeyID    string `json:"kid"`
	// License is the license as it was at checkout: id, key, status, product, policy,
	// expires_at, seats.limit and the entitlements in force as policies write them
	// ({"export-4k": {"type": "boolean"}, ...}; License.HasEntitlement reads them).
	License License `json:"license"`
	// Activation is the machine the file is bound to; nil for a file usable on any machine.
	Activation *FileActivation `json:"activation"`
	IssuedAt   time.Time       `json:"issued_at"`
	ExpiresAt  time.Time       `json:"expires_at"` // never later than the license's own expiry
	TTLSeconds int64           `json:"ttl_seconds"`
	// Certificate is the armored text the file was read from, to store or show as is.
	Certificate string `json:"-"`
}

// FileActivation is the activation a license file is bound to.
type FileActivation struct {
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
}

// ValidUntil is when the file stops verifying: its expires_at, or the license's own expiry when
// that is sooner.
func (f *LicenseFile) ValidUntil() time.Time {
	if f.License.ExpiresAt != nil && f.License.ExpiresAt.Before(f.ExpiresAt) {
		return *f.License.ExpiresAt
	}
	return f.ExpiresAt
}

// VerifyLicenseFile verifies a license file offline against the pinned keys, at time now.
//
// In order: the armor and the payload.signature shape, both unpadded base64url, a 64-byte
// signature (FileMalformed); the payload's kid among keys (FileUnknownKey); the Ed25519
// signature, strictly, over the first part's ASCII text (FileBadSignature); format
// (FileUnsupportedFormat); tenant_id against tenant (FileWrongTenant); now before expires_at and
// before the license's own expires_at (FileExpired); issued_at at most MaxClockSkew after now
// (FileNotYetValid); and, when fingerprint is not empty, that the file is bound to a machine
// (FileUnbound) with that fingerprint (FileWrongFingerprint). With an empty fingerprint any file
// that verifies is accepted, bound or not. Nothing of the payload but its kid is read before the
// signature has verified. The error is a *FileError (it matches ErrInvalidFile).
func VerifyLicenseFile(text string, keys Keys, tenant, fingerprint string, now time.Time) (*LicenseFile, error) {
	body, err := unarmor(text)
	if err != nil {
		return nil, err
	}
	dot := strings.IndexByte(body, '.')
	if dot < 0 {
		return nil, fileErr(FileMalformed, "malformed license file: no '.' between payload and signature")
	}
	payloadB64, signatureB64 := body[:dot], body[dot+1:]
	b64url := base64.RawURLEncoding.Strict()
	payload, err := b64url.DecodeString(payloadB64)
	if err != nil {
		return nil, fileErr(FileMalformed, "malformed license file: the payload is not unpadded base64url")
	}
	signature, err := b64url.DecodeString(signatureB64)
	if err != nil {
		return nil, fileErr(FileMalformed, "malformed license file: the signature is not unpadded base64url")
	}
	if len(signature) != 64 {
		return nil, fileErr(FileMalformed, "malformed license file: the signature is not 64 bytes")
	}
	var kid struct {
		Kid *string `json:"kid"`
	}
	if err := json.Unmarshal(payload, &kid); err != nil || kid.Kid == nil {
		return nil, fileErr(FileMalformed, "malformed license file: a payload without a kid")
	}

	switch keys.verify(*kid.Kid, []byte(payloadB64), signature) {
	case verifiedUnknownKey:
		return nil, fileErr(FileUnknownKey, "signed by unknown key %q", *kid.Kid)
	case verifiedNo:
		return nil, fileErr(FileBadSignature, "the signature does not verify")
	}

	var raw struct {
		Format   *string `json:"format"`
		TenantID *string `json:"tenant_id"`
		License  *struct {
			ID     *string `json:"id"`
			Key    *string `json:"key"`
			Status *string `json:"status"`
		} `json:"license"`
		IssuedAt  *time.Time `json:"issued_at"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	file := &LicenseFile{}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fileErr(FileMalformed, "malformed license file: payload: %v", err)
	}
	if err := json.Unmarshal(payload, file); err != nil {
		return nil, fileErr(FileMalformed, "malformed license file: payload: %v", err)
	}
	switch {
	case raw.Format == nil, raw.TenantID == nil, raw.IssuedAt == nil, raw.ExpiresAt == nil, raw.License == nil,
		raw.License.ID == nil, raw.License.Key == nil, raw.License.Status == nil:
		return nil, fileErr(FileMalformed, "malformed license file: the payload misses a required field")
	}
	if file.Format != FileFormat {
		return nil, fileErr(FileUnsupportedFormat, "unsupported license file format %q", file.Format)
	}
	if file.TenantID != tenant {
		return nil, fileErr(FileWrongTenant, "the file is for tenant %q, expected %q", file.TenantID, tenant)
	}
	if until := file.ValidUntil(); !now.Before(until) {
		return nil, fileErr(FileExpired, "the file expired at %s", until.UTC().Format(time.RFC3339))
	}
	if file.IssuedAt.After(now.Add(MaxClockSkew)) {
		return nil, fileErr(FileNotYetValid, "the file was issued in the future (%s): is the clock set back?",
			file.IssuedAt.UTC().Format(time.RFC3339))
	}
	if fingerprint != "" {
		if file.Activation == nil {
			return nil, fileErr(FileUnbound, "the file is not bound to this machine (it is bound to none)")
		}
		if file.Activation.Fingerprint != fingerprint {
			return nil, fileErr(FileWrongFingerprint, "the file is bound to another machine")
		}
	}
	file.Certificate = text
	return file, nil
}

// unarmor returns the text between the armor lines with every whitespace character removed;
// text before the BEGIN line and after the END line is ignored.
func unarmor(text string) (string, error) {
	lines := strings.Split(text, "\n")
	i := 0
	for ; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == fileBegin {
			break
		}
	}
	if i == len(lines) {
		return "", fileErr(FileMalformed, "malformed license file: no %s line", fileBegin)
	}
	var body strings.Builder
	for _, line := range lines[i+1:] {
		line = strings.TrimSpace(line)
		if line == fileEnd {
			return body.String(), nil
		}
		for _, r := range line {
			if !unicode.IsSpace(r) {
				body.WriteRune(r)
			}
		}
	}
	return "", fileErr(FileMalformed, "malformed license file: no %s line", fileEnd)
}

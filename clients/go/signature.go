package licensing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

const (
	// SignatureVersion is the only version of signed answers this client accepts; version 1
	// (which covered neither the request body nor the tenant) is retired and refused.
	SignatureVersion = "2"
	// SignatureContext is the first line of a version-2 signed message.
	SignatureContext = "licensing-signature-v2"
	// MaxClockSkew is how far an answer's X-Signature-Date may be from the client's clock, and
	// how far ahead of it a license file's issued_at may be.
	MaxClockSkew = 5 * time.Minute
)

// SentRequest is what was sent, to check an answer against: the method, the path as sent with
// "?query" when there is one, the tenant (X-Tenant-Id), the X-Nonce ("" when none) and the exact
// bytes of the request body (nil when none).
type SentRequest struct {
	Method       string
	PathAndQuery string
	Tenant       string
	Nonce        string
	Body         []byte
}

// SignedMessage is the text the service signs for one answer: seven lines joined by "\n", no
// trailing newline — the context line, "METHOD path?query", the tenant, the X-Signature-Date,
// the nonce, and the lowercase hex SHA-256 of the request body and of the response body.
func SignedMessage(req SentRequest, date string, responseBody []byte) string {
	return strings.Join([]string{
		SignatureContext,
		strings.ToUpper(req.Method) + " " + req.PathAndQuery,
		req.Tenant,
		date,
		req.Nonce,
		sha256Hex(req.Body),
		sha256Hex(responseBody),
	}, "\n")
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SignatureHeader holds the parameters of an X-Signature header that matter.
type SignatureHeader struct {
	KeyID     string
	Signature []byte // 64 bytes
}

// ParseSignatureHeader parses `keyid="v1", algorithm="ed25519", version="2", signature="..."`:
// comma-separated name="value" pairs in any order; unknown names are ignored, a repeated name is
// an error, the algorithm must be ed25519 and the version 2 (a header without a version is a
// retired version-1 signature), the signature the standard base64 of 64 bytes.
func ParseSignatureHeader(header string) (SignatureHeader, error) {
	values := map[string]string{}
	for _, part := range strings.Split(header, ",") {
		eq := strings.IndexByte(part, '=')
		if eq < 0 {
			return SignatureHeader{}, fmt.Errorf("X-Signature parameter without a value: %q", part)
		}
		name := strings.ToLower(strings.TrimSpace(part[:eq]))
		value := strings.TrimSpace(part[eq+1:])
		if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
			return SignatureHeader{}, fmt.Errorf("X-Signature parameter %s is not quoted", name)
		}
		switch name {
		case "keyid", "algorithm", "version", "signature":
		default:
			continue
		}
		if _, seen := values[name]; seen {
			return SignatureHeader{}, fmt.Errorf("X-Signature repeats %s", name)
		}
		values[name] = value[1 : len(value)-1]
	}
	for _, name := range []string{"keyid", "algorithm", "version", "signature"} {
		if _, ok := values[name]; !ok {
			if name == "version" {
				return SignatureHeader{}, fmt.Errorf("X-Signature has no version (version 1 is retired)")
			}
			return SignatureHeader{}, fmt.Errorf("X-Signature has no %s", name)
		}
	}
	if !strings.EqualFold(values["algorithm"], "ed25519") {
		return SignatureHeader{}, fmt.Errorf("X-Signature algorithm %q is not ed25519", values["algorithm"])
	}
	if values["version"] != SignatureVersion {
		return SignatureHeader{}, fmt.Errorf("X-Signature version %q is not %q", values["version"], SignatureVersion)
	}
	if values["keyid"] == "" {
		return SignatureHeader{}, fmt.Errorf("X-Signature has an empty keyid")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(values["signature"])
	if err != nil || len(sig) != 64 {
		return SignatureHeader{}, fmt.Errorf("X-Signature signature is not the base64 of 64 bytes")
	}
	return SignatureHeader{KeyID: values["keyid"], Signature: sig}, nil
}

// VerifyAnswer checks an answer's X-Signature and X-Signature-Date (their values, "" when absent)
// against the request that was sent and the answer's body, with the pinned keys, at time now:
// the header well-formed and of version 2, its key pinned, the signature valid (strictly) over
// SignedMessage, and the date within MaxClockSkew of now. The error is a *SignatureError (it
// matches ErrSignature); on any error nothing of the body may be used.
func VerifyAnswer(keys Keys, req SentRequest, signature, date string, body []byte, now time.Time) error {
	if signature == "" {
		return sigErr(SigMissing, "the answer has no X-Signature")
	}
	if date == "" {
		return sigErr(SigMissing, "the answer has no X-Signature-Date")
	}
	for _, h := range []string{signature, date} {
		if !visibleASCII(h) {
			return sigErr(SigMalformed, "a signature header is not visible ASCII")
		}
	}
	header, err := ParseSignatureHeader(signature)
	if err != nil {
		return sigErr(SigMalformed, err.Error())
	}
	message := SignedMessage(req, date, body)
	switch keys.verify(header.KeyID, []byte(message), header.Signature) {
	case verifiedUnknownKey:
		return sigErr(SigUnknownKey, fmt.Sprintf("the answer is signed by unknown key %q", header.KeyID))
	case verifiedNo:
		return sigErr(SigMismatch, fmt.Sprintf("the signature by key %q does not verify for %s %s as sent",
			header.KeyID, strings.ToUpper(req.Method), req.PathAndQuery))
	}
	signedAt, err := time.Parse(time.RFC3339Nano, date)
	if err != nil {
		return sigErr(SigMalformed, fmt.Sprintf("X-Signature-Date %q is not an RFC 3339 time", date))
	}
	if skew := now.Sub(signedAt); skew > MaxClockSkew || skew < -MaxClockSkew {
		return sigErr(SigStale, fmt.Sprintf("the answer was signed at %s, %s from this machine's clock (at most %s allowed)",
			date, skew.Round(time.Second), MaxClockSkew))
	}
	return nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return false
		}
	}
	return true
}

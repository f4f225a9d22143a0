package licensing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The worked example of docs/signing.md § 4 (test-vector key, acme, v1).
const docFile = `-----BEGIN LICENSE FILE-----
eyJhY3RpdmF0aW9uIjp7ImZpbmdlcnByaW50IjoiOGMxZi1hbm4tbGFwdG9wIiwi
aWQiOiJhY3RfMWI3NDBmODI1YjkyZmVlNDhlOGMwMWU5NzhjZDJkZDQ1MTQzNmE2
YWYyNGU5MDI5MGFhMyJ9LCJleHBpcmVzX2F0IjoiMjAyNi0xMi0wMVQxMjowMDow
MC4wMDBaIiwiZm9ybWF0IjoibGljZW5zaW5nLWZpbGUvdjEiLCJpc3N1ZWRfYXQi
OiIyMDI2LTExLTMwVDEyOjAwOjAwLjAwMFoiLCJraWQiOiJ2MSIsImxpY2Vuc2Ui
OnsiZW50aXRsZW1lbnRzIjp7ImV4cG9ydC00ayI6eyJ0eXBlIjoiYm9vbGVhbiJ9
fSwiZXhwaXJlc19hdCI6bnVsbCwiaWQiOiJsaWNfMWI3NDBmODI1YjkyZmVlNDhl
OGMwMWU5NzhjZDJkZDQiLCJrZXkiOiJTSEQwMi1SSDZDQS1NVkNXVC1YUVhKVC1E
Q0JSMyIsInBvbGljeSI6InBvbF8wMW04NHd5cXJndG0yOG1na3MyZnh6ejZxeCIs
InByb2R1Y3QiOiJkZXNrdG9wIiwic2VhdHMiOnsibGltaXQiOjN9LCJzdGF0dXMi
OiJhY3RpdmUifSwidGVuYW50X2lkIjoiYWNtZSIsInR0bF9zZWNvbmRzIjo4NjQw
MH0.dkVYTBgqhgSYbVfvEtkDWb36d2lJf4wdpbl-Y2J95JirIfg0dLoGKV_iuvwC
P_FrLsx7YndZVzCd2NOO1rsYCg
-----END LICENSE FILE-----
`

var docFileNow = time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)

func assertFileProblem(t *testing.T, err error, want FileProblem) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidFile) {
		t.Fatalf("want a FileError (%s), got %v", want, err)
	}
	if fe.Problem != want {
		t.Fatalf("want %s, got %s: %v", want, fe.Problem, err)
	}
}

func TestTheDocumentedFileVerifies(t *testing.T) {
	file, err := VerifyLicenseFile(docFile, docKeys, "acme", "8c1f-ann-laptop", docFileNow)
	if err != nil {
		t.Fatal(err)
	}
	if file.License.Key != "SHD02-RH6CA-MVCWT-XQXJT-DCBR3" || file.KeyID != "v1" || file.TTLSeconds != 86400 {
		t.Fatalf("payload: %+v", file)
	}
	if *file.License.Seats.Limit != 3 || !file.License.HasEntitlement("export-4k") || file.License.HasEntitlement("sso") {
		t.Fatalf("license: %+v", file.License)
	}
	if file.Activation.ID != "act_1b740f825b92fee48e8c01e978cd2dd451436a6af24e90290aa3" {
		t.Fatal(file.Activation)
	}
	if !file.ExpiresAt.Equal(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)) || file.Certificate != docFile {
		t.Fatal(file.ExpiresAt)
	}
	// Without a fingerprint to compare (the operator's check) a bound file verifies too.
	if _, err := VerifyLicenseFile(docFile, docKeys, "acme", "", docFileNow); err != nil {
		t.Fatal(err)
	}
}

func TestTheDocumentedFileRefusals(t *testing.T) {
	end := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	_, err := VerifyLicenseFile(docFile, docKeys, "acme", "8c1f-ann-laptop", end)
	assertFileProblem(t, err, FileExpired)
	if _, err := VerifyLicenseFile(docFile, docKeys, "acme", "", end.Add(-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = VerifyLicenseFile(docFile, docKeys, "acme", "other-machine", docFileNow)
	assertFileProblem(t, err, FileWrongFingerprint)
	_, err = VerifyLicenseFile(docFile, docKeys, "acme2", "", docFileNow)
	assertFileProblem(t, err, FileWrongTenant)
	_, err = VerifyLicenseFile(docFile, Keys{"v2": docKeys["v1"]}, "acme", "", docFileNow)
	assertFileProblem(t, err, FileUnknownKey)
	_, err = VerifyLicenseFile(docFile, pinnedFor("v1", seedKey(1)), "acme", "", docFileNow)
	assertFileProblem(t, err, FileBadSignature)
	// Issued at 12:00: more than five minutes ahead of a clock at 11:54:59 is refused.
	_, err = VerifyLicenseFile(docFile, docKeys, "acme", "", time.Date(2026, 11, 30, 11, 54, 59, 0, time.UTC))
	assertFileProblem(t, err, FileNotYetValid)
	if _, err := VerifyLicenseFile(docFile, docKeys, "acme", "", time.Date(2026, 11, 30, 11, 55, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
}

func TestWhitespaceAndSurroundingTextAreIgnored(t *testing.T) {
	spaced := strings.ReplaceAll(docFile, "\n", "\r\n \t")
	spaced = strings.Replace(spaced, "eyJhY3Rp", "eyJh \t Y3Rp", 1)
	spaced = "Your license:\r\n\r\n  " + spaced + "\r\n-- thanks\r\n"
	if _, err := VerifyLicenseFile(spaced, docKeys, "acme", "8c1f-ann-laptop", docFileNow); err != nil {
		t.Fatal(err)
	}
}

func testPayload() map[string]any {
	return map[string]any{
		"format": "licensing-file/v1", "tenant_id": "acme", "kid": "v1",
		"license": map[string]any{
			"id": "lic_1", "key": "ABCDE-FGHIJ", "status": "active", "product": "desktop", "policy": "pol_1",
			"expires_at": nil, "seats": map[string]any{"limit": 3},
			"entitlements": map[string]any{"export-4k": map[string]any{"type": "boolean"}},
		},
		"activation": map[string]any{"id": "act_1", "fingerprint": "fp-1"},
		"issued_at":  "2026-11-30T11:00:00.000Z", "expires_at": "2026-12-01T11:00:00.000Z", "ttl_seconds": 86400,
	}
}

var payloadNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestFileChecks(t *testing.T) {
	key := seedKey(1)
	keys := pinnedFor("v1", key)
	verify := func(p map[string]any, fp string) error {
		_, err := VerifyLicenseFile(signFile(p, key), keys, "acme", fp, payloadNow)
		return err
	}
	if err := verify(testPayload(), "fp-1"); err != nil {
		t.Fatal(err)
	}
	unbound := testPayload()
	unbound["activation"] = nil
	assertFileProblem(t, verify(unbound, "fp-1"), FileUnbound)
	if err := verify(unbound, ""); err != nil {
		t.Fatal(err)
	}
	delete(unbound, "activation")
	assertFileProblem(t, verify(unbound, "fp-1"), FileUnbound)

	licenseExpired := testPayload()
	licenseExpired["license"].(map[string]any)["expires_at"] = "2026-11-30T11:30:00Z"
	assertFileProblem(t, verify(licenseExpired, ""), FileExpired)

	format := testPayload()
	format["format"] = "licensing-file/v2"
	assertFileProblem(t, verify(format, ""), FileUnsupportedFormat)

	for _, field := range []string{"expires_at", "issued_at", "tenant_id", "format", "license"} {
		p := testPayload()
		delete(p, field)
		assertFileProblem(t, verify(p, ""), FileMalformed)
	}
}

func TestTamperedAndMalformedFiles(t *testing.T) {
	key := seedKey(1)
	keys := pinnedFor("v1", key)
	good := signFile(testPayload(), key)
	body := strings.Join(strings.Fields(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(good), fileBegin), fileEnd)), "")
	payloadB64, sigB64, _ := strings.Cut(body, ".")

	// Another payload under the genuine signature (more seats).
	forged := testPayload()
	forged["license"].(map[string]any)["seats"] = map[string]any{"limit": 1000}
	raw, _ := json.Marshal(forged)
	_, err := VerifyLicenseFile(armor(base64.RawURLEncoding.EncodeToString(raw)+"."+sigB64), keys, "acme", "", payloadNow)
	assertFileProblem(t, err, FileBadSignature)

	notJSON := base64.RawURLEncoding.EncodeToString([]byte("not json"))
	for name, text := range map[string]string{
		"no armor":        body,
		"no end":          strings.Replace(good, fileEnd, "", 1),
		"no dot":          armor(payloadB64),
		"two dots":        armor(payloadB64 + "." + sigB64 + ".x"),
		"padded":          armor(payloadB64 + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)) + "=="),
		"63-byte sig":     armor(payloadB64 + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 63))),
		"standard b64":    armor("+" + payloadB64 + "." + sigB64),
		"payload no JSON": armor(notJSON + "." + sigB64),
	} {
		_, err := VerifyLicenseFile(text, keys, "acme", "", payloadNow)
		t.Run(name, func(t *testing.T) { assertFileProblem(t, err, FileMalformed) })
	}
}

package licensing

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// The shared conformance cases (clients/conformance/cases.json, format licensing-conformance/v1):
// signed answers and license files, valid and tampered, made by the service's own signing code,
// that every client library must judge identically. Every case runs; any verdict that differs
// fails the test.

type conformance struct {
	Format              string            `json:"format"`
	Now                 time.Time         `json:"now"`
	MaxClockSkewSeconds *int              `json:"max_clock_skew_seconds"`
	Tenant              string            `json:"tenant"`
	Keys                map[string]string `json:"keys"`
	Answers             []struct {
		Name    string `json:"name"`
		Expect  string `json:"expect"`
		Reason  string `json:"reason"`
		Request struct {
			Method string  `json:"method"`
			Path   string  `json:"path"`
			Tenant string  `json:"tenant"`
			Nonce  *string `json:"nonce"`
			Body   string  `json:"body"`
		} `json:"request"`
		Response struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
		} `json:"response"`
	} `json:"answers"`
	Files []struct {
		Name        string  `json:"name"`
		Expect      string  `json:"expect"`
		Reason      string  `json:"reason"`
		Certificate string  `json:"certificate"`
		Fingerprint *string `json:"fingerprint"`
		Tenant      string  `json:"tenant"`
	} `json:"files"`
}

// How this library names each reason of the cases (a reason not listed is judged on the verdict
// alone).
var (
	answerReasons = map[string][]SignatureReason{
		"tampered_request_body":  {SigMismatch},
		"tampered_response_body": {SigMismatch},
		"tampered_path":          {SigMismatch},
		"tampered_date":          {SigMismatch},
		"tampered_nonce":         {SigMismatch},
		"tampered_tenant":        {SigMismatch},
		"bad_signature":          {SigMismatch},
		"unknown_kid":            {SigUnknownKey},
		"unsupported_version":    {SigMalformed},
		"missing_signature":      {SigMissing},
		"expired":                {SigStale},
	}
	fileReasons = map[string][]FileProblem{
		"tampered":                 {FileBadSignature, FileMalformed},
		"unknown_kid":              {FileUnknownKey},
		"expired":                  {FileExpired},
		"wrong_fingerprint":        {FileWrongFingerprint},
		"unbound_with_fingerprint": {FileUnbound},
		"wrong_tenant":             {FileWrongTenant},
		"not_yet_valid":            {FileNotYetValid},
		"unsupported_format":       {FileUnsupportedFormat},
		"malformed":                {FileMalformed},
	}
)

func conformancePath() string {
	if p := os.Getenv("LICENSING_CONFORMANCE"); p != "" {
		return p
	}
	return "../conformance/cases.json"
}

func loadConformance(t *testing.T) *conformance {
	t.Helper()
	raw, err := os.ReadFile(conformancePath())
	if err != nil {
		t.Fatalf("the conformance cases are required: %v", err)
	}
	var c conformance
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Format != "licensing-conformance/v1" {
		t.Fatalf("format %q", c.Format)
	}
	if c.MaxClockSkewSeconds != nil && time.Duration(*c.MaxClockSkewSeconds)*time.Second != MaxClockSkew {
		t.Fatalf("the cases allow %d s of skew, this library %s", *c.MaxClockSkewSeconds, MaxClockSkew)
	}
	if len(c.Answers) == 0 || len(c.Files) == 0 {
		t.Fatal("no cases")
	}
	return &c
}

func TestConformanceAnswers(t *testing.T) {
	c := loadConformance(t)
	keys, err := ParseKeys(c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, tc := range c.Answers {
		tc := tc
		t.Run(tc.Name, func(t *testing.T) {
			ran++
			header := func(name string) string {
				for k, v := range tc.Response.Headers {
					if strings.EqualFold(k, name) {
						return v
					}
				}
				return ""
			}
			nonce := ""
			if tc.Request.Nonce != nil {
				nonce = *tc.Request.Nonce
			}
			req := SentRequest{
				Method: tc.Request.Method, PathAndQuery: tc.Request.Path, Tenant: tc.Request.Tenant,
				Nonce: nonce, Body: []byte(tc.Request.Body),
			}
			err := VerifyAnswer(keys, req, header("X-Signature"), header("X-Signature-Date"),
				[]byte(tc.Response.Body), c.Now)
			judge(t, tc.Expect, err)
			if err != nil {
				var se *SignatureError
				if !errors.As(err, &se) {
					t.Fatalf("not a SignatureError: %v", err)
				}
				if want, ok := answerReasons[tc.Reason]; ok && !containsReason(want, se.Reason) {
					t.Errorf("reason %q: refused as %s (%v)", tc.Reason, se.Reason, err)
				}
			}
		})
	}
	if ran != len(c.Answers) {
		t.Fatalf("ran %d of %d answers", ran, len(c.Answers))
	}
}

func TestConformanceFiles(t *testing.T) {
	c := loadConformance(t)
	keys, err := ParseKeys(c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, tc := range c.Files {
		tc := tc
		t.Run(tc.Name, func(t *testing.T) {
			ran++
			fingerprint := ""
			if tc.Fingerprint != nil {
				fingerprint = *tc.Fingerprint
			}
			file, err := VerifyLicenseFile(tc.Certificate, keys, tc.Tenant, fingerprint, c.Now)
			judge(t, tc.Expect, err)
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("not a FileError: %v", err)
				}
				if want, ok := fileReasons[tc.Reason]; ok && !containsReason(want, fe.Problem) {
					t.Errorf("reason %q: refused as %s (%v)", tc.Reason, fe.Problem, err)
				}
				return
			}
			if file.TenantID != tc.Tenant || (fingerprint != "" && file.Activation.Fingerprint != fingerprint) {
				t.Errorf("accepted a file for %s / %+v", file.TenantID, file.Activation)
			}
		})
	}
	if ran != len(c.Files) {
		t.Fatalf("ran %d of %d files", ran, len(c.Files))
	}
}

func judge(t *testing.T, expect string, err error) {
	t.Helper()
	switch expect {
	case "valid":
		if err != nil {
			t.Fatalf("expected valid, refused: %v", err)
		}
	case "invalid":
		if err == nil {
			t.Fatal("expected invalid, accepted")
		}
	default:
		t.Fatalf("unknown expectation %q", expect)
	}
}

func containsReason[T comparable](list []T, x T) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

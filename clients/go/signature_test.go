package licensing

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The test-vector key of docs/signing.md § 1 (tenant acme, v1).
const docKey = "cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0="

var docKeys = MustParseKeys(map[string]string{"v1": docKey})

// The worked example of docs/signing.md § 3.
var (
	docRequest = SentRequest{
		Method:       "POST",
		PathAndQuery: "/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1",
		Tenant:       "acme",
		Nonce:        "9b1c3f0e7a2d4c8e",
		Body:         []byte(`{"fingerprint":"8c1f-ann-laptop"}`),
	}
	docAnswer    = []byte(`{"data":{"code":"NOT_FOUND","detail":"No license exists with this key.","license":null,"valid":false},"meta":{"api_version":"v1","request_id":"req_01M8P9E266J9WQ7Z4N2B8C5D6E"}}`)
	docSignature = `keyid="v1", algorithm="ed25519", version="2", signature="J/Y0AqkBK7pWIgQc4tVzL+6Plk/TywqhA8mIe4OqHW+V1pytXhdUe06tSRzY2YOVPCb5+tdE5brkMLG/Jx3cDQ=="`
	docDate      = "2026-11-30T12:00:00.000Z"
	docNow       = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
)

func TestSignedMessageMatchesTheDocumentedExample(t *testing.T) {
	want := "licensing-signature-v2\n" +
		"POST /v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1\n" +
		"acme\n" +
		"2026-11-30T12:00:00.000Z\n" +
		"9b1c3f0e7a2d4c8e\n" +
		"b961922a9bc09042c3d0a810cfc3cff2a86abe15e58554d26a167ec166860e29\n" +
		"e1731b5dcb41f01142b2552454a7ac2de949dc539c8b387f41c1fcde01b3e1c8"
	if got := SignedMessage(docRequest, docDate, docAnswer); got != want {
		t.Fatalf("message:\n%s\nwant:\n%s", got, want)
	}
	// No body and no nonce: the empty string's hash and an empty line; the method upper-cased.
	got := SignedMessage(SentRequest{Method: "delete", PathAndQuery: "/v1/integration/x", Tenant: "acme"}, docDate, []byte("{}"))
	want = "licensing-signature-v2\nDELETE /v1/integration/x\nacme\n2026-11-30T12:00:00.000Z\n\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
		"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	if got != want {
		t.Fatalf("message:\n%s\nwant:\n%s", got, want)
	}
}

func TestTheDocumentedAnswerVerifies(t *testing.T) {
	if err := VerifyAnswer(docKeys, docRequest, docSignature, docDate, docAnswer, docNow); err != nil {
		t.Fatal(err)
	}
	// The same answer for the request with its fingerprint dropped (what a man in the middle
	// would forward) does not verify.
	rewritten := docRequest
	rewritten.Body = []byte(`{}`)
	err := VerifyAnswer(docKeys, rewritten, docSignature, docDate, docAnswer, docNow)
	assertSigReason(t, err, SigMismatch)
}

func assertSigReason(t *testing.T, err error, want SignatureReason) {
	t.Helper()
	var se *SignatureError
	if !errors.As(err, &se) || !errors.Is(err, ErrSignature) {
		t.Fatalf("want a SignatureError (%s), got %v", want, err)
	}
	if se.Reason != want {
		t.Fatalf("want reason %s, got %s: %v", want, se.Reason, err)
	}
}

func TestAnyChangedPartFailsToVerify(t *testing.T) {
	check := func(name string, req SentRequest, date string, body []byte, now time.Time, want SignatureReason) {
		t.Run(name, func(t *testing.T) {
			assertSigReason(t, VerifyAnswer(docKeys, req, docSignature, date, body, now), want)
		})
	}
	flipped := append([]byte(nil), docAnswer...)
	flipped[10] ^= 1
	check("response body", docRequest, docDate, flipped, docNow, SigMismatch)
	check("date", docRequest, "2026-11-30T12:00:01.000Z", docAnswer, docNow, SigMismatch)
	for name, mutate := range map[string]func(*SentRequest){
		"method":         func(r *SentRequest) { r.Method = "PUT" },
		"path":           func(r *SentRequest) { r.PathAndQuery = strings.Replace(r.PathAndQuery, "CE0HC", "CE0HD", 1) },
		"query":          func(r *SentRequest) { r.PathAndQuery = strings.TrimSuffix(r.PathAndQuery, "?trace=1") },
		"tenant":         func(r *SentRequest) { r.Tenant = "acme2" },
		"nonce":          func(r *SentRequest) { r.Nonce = "9b1c3f0e7a2d4c8f" },
		"no nonce":       func(r *SentRequest) { r.Nonce = "" },
		"request body":   func(r *SentRequest) { r.Body = []byte(`{"fingerprint":"8c1f-ann-laptoq"}`) },
		"reformatted":    func(r *SentRequest) { r.Body = []byte(`{"fingerprint": "8c1f-ann-laptop"}`) },
		"no body at all": func(r *SentRequest) { r.Body = nil },
	} {
		req := docRequest
		mutate(&req)
		check(name, req, docDate, docAnswer, docNow, SigMismatch)
	}
}

func TestAnswerDatesOutsideTheSkewAreStale(t *testing.T) {
	for _, d := range []time.Duration{5*time.Minute + time.Millisecond, -5*time.Minute - time.Millisecond, 24 * time.Hour} {
		err := VerifyAnswer(docKeys, docRequest, docSignature, docDate, docAnswer, docNow.Add(d))
		assertSigReason(t, err, SigStale)
	}
	for _, d := range []time.Duration{5 * time.Minute, -5 * time.Minute, 0} {
		if err := VerifyAnswer(docKeys, docRequest, docSignature, docDate, docAnswer, docNow.Add(d)); err != nil {
			t.Errorf("skew %s: %v", d, err)
		}
	}
}

func TestUnknownKidAndWrongKey(t *testing.T) {
	other := Keys{"v2": docKeys["v1"]}
	assertSigReason(t, VerifyAnswer(other, docRequest, docSignature, docDate, docAnswer, docNow), SigUnknownKey)
	wrong := pinnedFor("v1", seedKey(9))
	assertSigReason(t, VerifyAnswer(wrong, docRequest, docSignature, docDate, docAnswer, docNow), SigMismatch)
}

func TestMissingOrMalformedHeaders(t *testing.T) {
	assertSigReason(t, VerifyAnswer(docKeys, docRequest, "", docDate, docAnswer, docNow), SigMissing)
	assertSigReason(t, VerifyAnswer(docKeys, docRequest, docSignature, "", docAnswer, docNow), SigMissing)
	good := docSignature
	sigB64 := good[strings.Index(good, `signature="`)+11 : len(good)-1]
	for _, bad := range []string{
		"garbage",
		strings.Replace(good, "ed25519", "rsa", 1),
		strings.Replace(good, `keyid="v1", `, "", 1),
		strings.Replace(good, `keyid="v1"`, "keyid=v1", 1),
		strings.Replace(good, `version="2", `, "", 1), // a version-1 header: refused
		strings.Replace(good, `version="2"`, `version="1"`, 1),
		strings.Replace(good, `version="2"`, `version="3"`, 1),
		strings.Replace(good, `keyid="v1"`, `keyid=""`, 1),
		good + `, keyid="v1"`,
		good + `, version="2"`,
		`keyid="v1", algorithm="ed25519", version="2", signature="AAAA"`,
		`keyid="v1", algorithm="ed25519", version="2", signature="!!notbase64!!"`,
		strings.Replace(good, sigB64, strings.TrimRight(sigB64, "="), 1), // padding is required
		good + "\x01",
	} {
		assertSigReason(t, VerifyAnswer(docKeys, docRequest, bad, docDate, docAnswer, docNow), SigMalformed)
	}
	// Parameters in another order, unknown ones and odd spacing are fine.
	reordered := fmt.Sprintf(`signature="%s",version="2" , extra="x",  ALGORITHM="Ed25519", keyid="v1"`, sigB64)
	if err := VerifyAnswer(docKeys, docRequest, reordered, docDate, docAnswer, docNow); err != nil {
		t.Fatal(err)
	}
}

func TestSmallOrderKeysAndSignaturesAreRefused(t *testing.T) {
	// The identity point as a key, and as R with S = 0: [S]B - [k]A = identity = R for every
	// message, so a plain Ed25519 verifier accepts this "signature" of anything.
	identity := append([]byte{1}, make([]byte, 31)...)
	forged := append(append([]byte(nil), identity...), make([]byte, 32)...)
	message := []byte("anything at all")
	if !ed25519.Verify(ed25519.PublicKey(identity), message, forged) {
		t.Skip("this Go version's ed25519.Verify already refuses small-order keys")
	}
	keys := Keys{"v1": identity}
	if got := keys.verify("v1", message, forged); got != verifiedNo {
		t.Fatalf("the forged signature by a small-order key verified: %v", got)
	}
	// A small-order R with a real key is refused too; a real signature passes.
	real := seedKey(3)
	good := ed25519.Sign(real, message)
	keys = pinnedFor("v1", real)
	if got := keys.verify("v1", message, good); got != verifiedYes {
		t.Fatalf("a good signature did not verify: %v", got)
	}
	if !weak(identity) || weak(real.Public().(ed25519.PublicKey)) {
		t.Fatal("weak() misjudged a point")
	}
	// weak() agrees with computing 8·P on the curve, for points of every order: multiples of a
	// small-order point added to real keys, and the small-order encodings with the sign bit
	// flipped and y + p (non-canonical).
	for seed := byte(1); seed < 40; seed++ {
		pub := seedKey(seed).Public().(ed25519.PublicKey)
		if weak(pub) || timesEightIsIdentity(t, pub) {
			t.Fatalf("key %d judged weak", seed)
		}
	}
}

// timesEightIsIdentity computes 8·P with the curve's addition law.
func timesEightIsIdentity(t *testing.T, enc []byte) bool {
	t.Helper()
	p, ok := decodePoint(enc)
	if !ok {
		t.Fatalf("%x is not a point", enc)
	}
	for i := 0; i < 3; i++ {
		p = add(p, p)
	}
	return p.x.Sign() == 0 && p.y.Cmp(one) == 0
}

func TestWeakMatchesTheCurve(t *testing.T) {
	// Every point P with 8·P = O, found by walking from each known torsion encoding: flip the
	// sign bit, add p to y where it fits in 255 bits; each decodable one must be judged weak,
	// and weak() must agree with 8·P = O.
	found := 0
	for _, enc := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p ≡ 0
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1 ≡ 1
	} {
		for _, sign := range []byte{0, 0x80} {
			b := mustHex(t, enc)
			b[31] = b[31]&0x7f | sign
			if _, ok := decodePoint(b); !ok {
				continue
			}
			found++
			if !timesEightIsIdentity(t, b) || !weak(b) {
				t.Errorf("%x: 8P=O %v, weak %v", b, timesEightIsIdentity(t, b), weak(b))
			}
		}
	}
	if found < 14 {
		t.Fatalf("only %d small-order encodings decoded", found)
	}
	// And points of large order, including the base point, are not weak.
	base := mustHex(t, "5866666666666666666666666666666666666666666666666666666666666666")
	if weak(base) || timesEightIsIdentity(t, base) {
		t.Fatal("the base point judged weak")
	}
	// Every point of order 2, 4 or 8 is weak: the eight torsion points, from their encodings.
	for _, enc := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000", // identity
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // (0, -1), order 2
		"0000000000000000000000000000000000000000000000000000000000000000", // order 4
		"0000000000000000000000000000000000000000000000000000000000000080", // order 4
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	} {
		if !weak(mustHex(t, enc)) {
			t.Errorf("%s is of small order and was not refused", enc)
		}
	}
}

func TestParseKeys(t *testing.T) {
	pub := seedKey(1).Public().(ed25519.PublicKey)
	padded := base64.StdEncoding.EncodeToString(pub)
	keys, err := ParseKeys(map[string]string{"v1": padded, "v2": " " + strings.TrimRight(padded, "=") + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	if string(keys["v1"]) != string(pub) || string(keys["v2"]) != string(pub) {
		t.Fatal("keys not decoded")
	}
	if ids := keys.IDs(); strings.Join(ids, ",") != "v1,v2" {
		t.Fatal(ids)
	}
	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := ParseKeys(map[string]string{"v1": bad}); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	// A y with no x on the curve (y = 2 is not a point).
	notAPoint := base64.StdEncoding.EncodeToString(append([]byte{2}, make([]byte, 31)...))
	if _, err := ParseKeys(map[string]string{"v1": notAPoint}); err == nil {
		t.Error("a non-point was accepted")
	}
}

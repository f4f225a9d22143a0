package licensing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fake licensing service for the unit tests: it authenticates license-key requests as the
// contract says, keeps seats and leases, issues bound license files and signs every answer
// (version 2) with a key from a fixed seed, at the time of its own (injectable) clock.

const (
	testTenant = "acme"
	testKey    = "SHD02-RH6CA-MVCWT-XQXJT-DCBR3"
)

func seedKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytesOf(seed, 32))
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func pinnedFor(kid string, key ed25519.PrivateKey) Keys {
	return Keys{kid: key.Public().(ed25519.PublicKey)}
}

// testClock is a settable clock shared by the fake service and the client.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeActivation struct {
	Activation
	heartbeats int
	dead       bool // a node-locked heartbeat overdue (HEARTBEAT_DEAD) until the next heartbeat
}

type fakeService struct {
	t      *testing.T
	server *httptest.Server
	key    ed25519.PrivateKey
	kid    string
	clock  *testClock

	mu           sync.Mutex
	calls        []string // "METHOD path" of every request
	down         bool     // answer an unsigned 503, as a gateway would
	signed5xx    bool     // answer a signed 503 SERVICE_UNAVAILABLE
	status       string   // the license's status
	floating     bool
	leaseSeconds int
	seatLimit    int
	overageLimit int
	maxFileTTL   int
	activations  map[string]*fakeActivation // by fingerprint
	usage        map[string]int64
	idempotent   map[string][]byte
	// tamper, when set, rewrites an answer's body after it was signed.
	tamper func(path string, body []byte) []byte
	// dateShift moves the signed date away from the clock.
	dateShift time.Duration
	// lastNonces are the nonces seen, to check they are fresh.
	nonces map[string]bool
}

func newFakeService(t *testing.T, clock *testClock) *fakeService {
	f := &fakeService{
		t: t, key: seedKey(1), kid: "v1", clock: clock,
		status: "active", leaseSeconds: 900, seatLimit: 3, maxFileTTL: 14 * 86400,
		activations: map[string]*fakeActivation{}, usage: map[string]int64{},
		idempotent: map[string][]byte{}, nonces: map[string]bool{},
	}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeService) keys() Keys { return pinnedFor(f.kid, f.key) }

func (f *fakeService) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithClock(f.clock.Now)}, opts...)
	c, err := New(f.server.URL, testTenant, testKey, f.keys(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeService) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeService) set(fn func(f *fakeService)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func activationID(fingerprint string) string {
	sum := sha256.Sum256([]byte(testKey + "\x00" + fingerprint))
	return "act_" + hex.EncodeToString(sum[:16])
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"message":"Service Unavailable"}`)
		return
	}
	nonce := r.Header.Get("X-Nonce")
	status, out := f.route(r, body, nonce)
	f.sign(w, r, body, nonce, status, out)
}

// route answers a request: the status and the envelope to sign.
func (f *fakeService) route(r *http.Request, body []byte, nonce string) (int, any) {
	if r.Header.Get("Authorization") != "License "+testKey || r.Header.Get("X-Tenant-Id") != testTenant {
		return fail(401, "UNAUTHENTICATED", "missing or invalid credentials")
	}
	if len(nonce) < 16 || len(nonce) > 128 {
		return fail(400, "NONCE_REQUIRED", "a nonce of 16 to 128 characters is required")
	}
	if f.nonces[nonce] {
		f.t.Errorf("nonce %s sent twice", nonce)
	}
	f.nonces[nonce] = true
	if f.signed5xx {
		return fail(503, "SERVICE_UNAVAILABLE", "the service is unavailable, retry")
	}
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return fail(400, "INVALID_JSON", "the body is not JSON")
		}
	}
	str := func(k string) string { s, _ := in[k].(string); return s }
	path := strings.TrimPrefix(r.URL.Path, "/v1/integration/")
	parts := strings.Split(path, "/")
	now := f.clock.Now()
	switch {
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "licenses" && parts[2] == "validate":
		code, valid := "VALID", true
		if f.status != "active" {
			code, valid = strings.ToUpper(f.status), false
		} else if fp := str("fingerprint"); fp != "" && !f.holds(fp, now) {
			code, valid = "NO_ACTIVATION", false
		}
		return 200, map[string]any{"data": map[string]any{
			"valid": valid, "code": code, "detail": "fake",
			"license": f.license(true),
		}}
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "licenses" && parts[2] == "checkout":
		fp := str("fingerprint")
		if fp == "" {
			return fail(422, "FINGERPRINT_REQUIRED", "a fingerprint is required")
		}
		if f.status != "active" {
			return fail(403, "LICENSE_NOT_ACTIVE", "the license is "+f.status)
		}
		if !f.holds(fp, now) || f.activations[fp].dead {
			return fail(409, "NO_ACTIVATION", "this fingerprint holds no seat")
		}
		ttl := int64(86400)
		if v, ok := in["ttl_seconds"].(float64); ok {
			ttl = int64(v)
		}
		if ttl > int64(f.maxFileTTL) {
			ttl = int64(f.maxFileTTL)
		}
		cert := f.file(fp, now, ttl)
		return 201, map[string]any{"data": map[string]any{"certificate": cert, "kid": f.kid}}
	case r.Method == "POST" && path == "activations":
		if str("license_key") != testKey {
			return fail(403, "LICENSE_SCOPE_MISMATCH", "another license")
		}
		if f.status != "active" {
			return fail(403, "LICENSE_NOT_ACTIVE", "the license is "+f.status)
		}
		fp := str("fingerprint")
		if a, ok := f.activations[fp]; ok && a.Status == "active" && f.holds(fp, now) {
			if f.floating {
				exp := now.Add(time.Duration(f.leaseSeconds) * time.Second)
				a.LeaseExpiresAt = &exp
			}
			return 200, map[string]any{"data": a.Activation}
		}
		used, overUsed := f.used(now)
		overage := false
		if used >= f.seatLimit {
			if !f.floating || overUsed >= f.overageLimit {
				limit := f.seatLimit
				if f.floating {
					limit += f.overageLimit
				}
				status, env := fail(409, "TOO_MANY_ACTIVATIONS", fmt.Sprintf("all %d seats of this license are in use", limit))
				env.(map[string]any)["error"].(map[string]any)["limit"] = limit
				return status, env
			}
			overage = true
		}
		created := now
		a := &fakeActivation{Activation: Activation{
			ID: activationID(fp), LicenseID: "lic_1", Fingerprint: fp, Status: "active", CreatedAt: &created,
			Overage: overage,
		}}
		if name := str("name"); name != "" {
			a.Name = &name
		}
		if f.floating {
			exp := now.Add(time.Duration(f.leaseSeconds) * time.Second)
			a.LeaseExpiresAt = &exp
		}
		f.activations[fp] = a
		return 201, map[string]any{"data": a.Activation}
	case r.Method == "POST" && path == "activations/deactivate":
		a, ok := f.activations[str("fingerprint")]
		if !ok {
			return fail(404, "ACTIVATION_NOT_FOUND", "no such activation")
		}
		a.Status = "deactivated"
		return 200, map[string]any{"data": a.Activation}
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "activations":
		for _, a := range f.activations {
			if a.ID == parts[1] {
				a.Status = "deactivated"
				return 200, map[string]any{"data": a.Activation}
			}
		}
		return fail(404, "ACTIVATION_NOT_FOUND", "no such activation")
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "activations" && parts[2] == "heartbeat":
		for fp, a := range f.activations {
			if a.ID != parts[1] {
				continue
			}
			if f.floating && !f.holds(fp, now) {
				return fail(409, "LEASE_EXPIRED", "the lease expired")
			}
			a.heartbeats++
			a.dead = false
			beat := now
			a.LastHeartbeatAt = &beat
			if f.floating {
				exp := now.Add(time.Duration(f.leaseSeconds) * time.Second)
				a.LeaseExpiresAt = &exp
			}
			return 200, map[string]any{"data": a.Activation}
		}
		return fail(404, "ACTIVATION_NOT_FOUND", "no such activation")
	case r.Method == "POST" && path == "usage/record":
		key := r.Header.Get("X-Idempotency-Key")
		if stored, ok := f.idempotent[key]; ok && key != "" {
			return 201, map[string]any{"data": json.RawMessage(stored), "replayed": true}
		}
		metric := str("metric")
		q, _ := in["quantity"].(float64)
		f.usage[metric] += int64(q)
		data, _ := json.Marshal(map[string]any{
			"metric": metric, "quantity": int64(q), "period": now.Format("2006-01"), "period_type": "month",
			"timestamp": now.UTC().Format(time.RFC3339Nano), "used": f.usage[metric], "limit": 1000,
			"remaining": 1000 - f.usage[metric], "overage": 0, "overage_policy": "deny",
			"resets_at": nil, "license_id": "lic_1",
		})
		if key != "" {
			f.idempotent[key] = data
		}
		return 201, map[string]any{"data": json.RawMessage(data)}
	case r.Method == "POST" && path == "entitlements/check":
		results := map[string]any{}
		for _, feat := range in["features"].([]any) {
			name := feat.(string)
			if name == "export-4k" {
				results[name] = map[string]any{"granted": true, "type": "boolean"}
			} else {
				results[name] = map[string]any{"granted": false, "type": nil, "reason": "not_defined"}
			}
		}
		return 200, map[string]any{"data": map[string]any{"license_valid": true, "code": "VALID", "results": results}}
	}
	return fail(404, "ROUTE_NOT_FOUND", "no such route")
}

// holds reports whether fp holds a seat now (an active activation; floating: an unexpired lease).
func (f *fakeService) holds(fp string, now time.Time) bool {
	a, ok := f.activations[fp]
	if !ok || a.Status != "active" {
		return false
	}
	return !f.floating || (a.LeaseExpiresAt != nil && now.Before(*a.LeaseExpiresAt))
}

func (f *fakeService) used(now time.Time) (committed, overage int) {
	for fp, a := range f.activations {
		if f.holds(fp, now) {
			if a.Overage {
				overage++
			} else {
				committed++
			}
		}
	}
	return
}

func (f *fakeService) license(withUsage bool) map[string]any {
	seats := map[string]any{"limit": f.seatLimit}
	mode := "node_locked"
	var lease any
	if withUsage {
		used, overUsed := f.used(f.clock.Now())
		seats["used"] = used
		if f.floating {
			seats["overage_limit"], seats["overage_used"] = f.overageLimit, overUsed
		}
	}
	if f.floating {
		mode, lease = "floating", f.leaseSeconds
	}
	return map[string]any{
		"id": "lic_1", "key": testKey, "status": f.status, "product": "desktop", "policy": "pol_1",
		"expires_at": nil, "seats": seats, "activation_mode": mode, "lease_seconds": lease,
		"entitlements": map[string]any{"export-4k": map[string]any{"type": "boolean"}},
	}
}

// file issues a license file bound to fp.
func (f *fakeService) file(fp string, now time.Time, ttl int64) string {
	lic := f.license(false)
	lic["seats"] = map[string]any{"limit": f.seatLimit}
	payload := map[string]any{
		"format": FileFormat, "tenant_id": testTenant, "kid": f.kid, "license": lic,
		"activation":  map[string]any{"id": activationID(fp), "fingerprint": fp},
		"issued_at":   now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"expires_at":  now.Add(time.Duration(ttl) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z"),
		"ttl_seconds": ttl,
	}
	return signFile(payload, f.key)
}

// signFile signs and armors a payload as the service does (lines of 64 characters).
func signFile(payload any, key ed25519.PrivateKey) string {
	raw, _ := json.Marshal(payload)
	p := base64.RawURLEncoding.EncodeToString(raw)
	s := base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(p)))
	return armor(p + "." + s)
}

func armor(body string) string {
	var b strings.Builder
	b.WriteString(fileBegin + "\n")
	for len(body) > 64 {
		b.WriteString(body[:64] + "\n")
		body = body[64:]
	}
	b.WriteString(body + "\n" + fileEnd + "\n")
	return b.String()
}

func fail(status int, code, message string) (int, any) {
	return status, map[string]any{"error": map[string]any{
		"code": code, "message": message, "type": "error", "status": status,
	}}
}

// sign writes the answer: the envelope with meta, X-Signature and X-Signature-Date over the
// request as received (method, RequestURI, tenant, nonce, body).
func (f *fakeService) sign(w http.ResponseWriter, r *http.Request, reqBody []byte, nonce string, status int, out any) {
	env := out.(map[string]any)
	replayed := env["replayed"] == true
	delete(env, "replayed")
	env["meta"] = map[string]any{"request_id": fmt.Sprintf("req_%d", len(f.calls)), "api_version": "v1"}
	body, _ := json.Marshal(env)
	date := f.clock.Now().Add(f.dateShift).UTC().Format("2006-01-02T15:04:05.000Z")
	req := SentRequest{Method: r.Method, PathAndQuery: r.RequestURI, Tenant: r.Header.Get("X-Tenant-Id"), Nonce: nonce, Body: reqBody}
	sig := ed25519.Sign(f.key, []byte(SignedMessage(req, date, body)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Signature", fmt.Sprintf(`keyid="%s", algorithm="ed25519", version="2", signature="%s"`,
		f.kid, base64.StdEncoding.EncodeToString(sig)))
	w.Header().Set("X-Signature-Date", date)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if status == 503 {
		w.Header().Set("Retry-After", "1")
	}
	if f.tamper != nil {
		body = f.tamper(r.URL.Path, body)
	}
	w.WriteHeader(status)
	w.Write(body)
}

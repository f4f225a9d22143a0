package licensing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Live tests against a running service (the dev server): they read LICENSING_BASE_URL,
// LICENSING_TENANT_ID, LICENSING_ADMIN_KEY (manage scope) and LICENSING_PUBLIC_KEY_V1, create
// their own product, policies and licenses through the Management API (names unique per run),
// and skip, saying so, when LICENSING_BASE_URL is not set.

type liveEnv struct {
	base, tenant, admin string
	keys                Keys
	run                 string
}

var (
	liveOnce    sync.Once
	liveFixture *liveEnv
	liveSetup   error
	livePlans   = map[string]string{} // plan name → policy id
)

func live(t *testing.T) *liveEnv {
	t.Helper()
	if os.Getenv("LICENSING_BASE_URL") == "" {
		t.Skip("live test skipped: LICENSING_BASE_URL is not set (start the dev server and source its settings)")
	}
	liveOnce.Do(func() { liveFixture, liveSetup = setUpLive() })
	if liveSetup != nil {
		t.Fatalf("live setup: %v", liveSetup)
	}
	return liveFixture
}

func setUpLive() (*liveEnv, error) {
	env := &liveEnv{
		base:   strings.TrimRight(os.Getenv("LICENSING_BASE_URL"), "/"),
		tenant: os.Getenv("LICENSING_TENANT_ID"),
		admin:  os.Getenv("LICENSING_ADMIN_KEY"),
	}
	for name, v := range map[string]string{"LICENSING_TENANT_ID": env.tenant, "LICENSING_ADMIN_KEY": env.admin,
		"LICENSING_PUBLIC_KEY_V1": os.Getenv("LICENSING_PUBLIC_KEY_V1")} {
		if v == "" {
			return nil, fmt.Errorf("%s is not set", name)
		}
	}
	keys, err := ParseKeys(map[string]string{"v1": os.Getenv("LICENSING_PUBLIC_KEY_V1")})
	if err != nil {
		return nil, err
	}
	env.keys = keys
	var b [4]byte
	rand.Read(b[:])
	env.run = fmt.Sprintf("go-%d-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	product := env.run
	if _, err := env.manage("POST", "/v1/manage/products", map[string]any{"code": product, "name": "Go client " + env.run}); err != nil {
		return nil, err
	}
	entitlements := map[string]any{
		"export-4k": map[string]any{"type": "boolean"},
		"api-calls": map[string]any{"type": "metered", "limit": 1000, "period": "month", "overage": "deny"},
	}
	for name, policy := range map[string]map[string]any{
		"node":     {"max_activations": 2},
		"floating": {"max_activations": 1, "activation_mode": "floating", "lease_seconds": 60, "max_overage": 1},
		"pool":     {"max_activations": 1, "activation_mode": "floating", "lease_seconds": 60},
	} {
		policy["product"], policy["name"], policy["entitlements"] = product, name, entitlements
		data, err := env.manage("POST", "/v1/manage/policies", policy)
		if err != nil {
			return nil, err
		}
		livePlans[name] = data["id"].(string)
	}
	return env, nil
}

// manage calls the Management API with the admin key and returns the data of a 2xx.
func (e *liveEnv) manage(method, path string, body any) (map[string]any, error) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.base+path, bytes.NewReader(raw))
	req.Header.Set("X-API-Key", e.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	var env struct {
		Data map[string]any `json:"data"`
	}
	return env.Data, json.Unmarshal(out, &env)
}

// license issues a license of plan and returns its key.
func (e *liveEnv) license(t *testing.T, plan string) string {
	t.Helper()
	data, err := e.manage("POST", "/v1/manage/licenses", map[string]any{
		"policy": livePlans[plan], "customer_email": e.run + "@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return data["key"].(string)
}

// countingTransport counts the HTTP requests a client sends.
type countingTransport struct{ n int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	atomic.AddInt64(&c.n, 1)
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count() int { return int(atomic.LoadInt64(&c.n)) }

func (e *liveEnv) client(t *testing.T, base, key string, opts ...Option) (*Client, *countingTransport) {
	t.Helper()
	counter := &countingTransport{}
	opts = append([]Option{WithHTTPClient(&http.Client{Transport: counter, Timeout: 10 * time.Second})}, opts...)
	c, err := New(base, e.tenant, key, e.keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, counter
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestLiveNodeLocked(t *testing.T) {
	e := live(t)
	key := e.license(t, "node")
	c, _ := e.client(t, e.base, key, WithProduct(e.run), WithCacheDir(t.TempDir()))
	ctx := context.Background()
	fp := "go-live-" + e.run

	v, err := c.Validate(ctx, "")
	if err != nil || !v.Valid || v.Code != CodeValid || v.License.Key != key || !v.License.HasEntitlement("export-4k") {
		t.Fatalf("validate: %+v %v", v, err)
	}
	if v, err = c.Validate(ctx, fp); err != nil || v.Valid || v.Code != CodeNoActivation {
		t.Fatalf("validate before activation: %+v %v", v, err)
	}
	act, err := c.Activate(ctx, fp, &ActivateOptions{Name: "Go live test", Hostname: "go-host"})
	if err != nil || act.Fingerprint != fp || act.Status != "active" || act.LeaseExpiresAt != nil {
		t.Fatalf("activate: %+v %v", act, err)
	}
	if v, err = c.Validate(ctx, fp, "export-4k"); err != nil || !v.Valid || *v.License.Seats.Used != 1 {
		t.Fatalf("validate after activation: %+v %v", v, err)
	}
	hb, err := c.Heartbeat(ctx, act.ID)
	if err != nil || hb.ID != act.ID || hb.LastHeartbeatAt == nil {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}
	idem := "go-usage-" + e.run
	rec, err := c.RecordUsage(ctx, "api-calls", 7, &UsageOptions{IdempotencyKey: idem, Metadata: map[string]any{"job": "live"}})
	if err != nil || rec.Used != 7 || rec.Remaining != 993 || rec.Replayed || rec.Metric != "api-calls" {
		t.Fatalf("usage: %+v %v", rec, err)
	}
	if rec, err = c.RecordUsage(ctx, "api-calls", 7, &UsageOptions{IdempotencyKey: idem, Metadata: map[string]any{"job": "live"}}); err != nil || !rec.Replayed || rec.Used != 7 {
		t.Fatalf("usage replay: %+v %v", rec, err)
	}
	earlier := time.Now().Add(-time.Minute)
	if rec, err = c.RecordUsage(ctx, "api-calls", 1, &UsageOptions{Timestamp: earlier}); err != nil || rec.Used != 8 ||
		rec.Timestamp.Sub(earlier).Abs() > time.Millisecond {
		t.Fatalf("usage with a timestamp: %+v %v", rec, err)
	}
	_, err = c.RecordUsage(ctx, "api-calls", 993, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != "QUOTA_EXCEEDED" || apiErr.Status != 403 || apiErr.RequestID == "" {
		t.Fatalf("past the limit: %v", err)
	}
	check, err := c.CheckEntitlements(ctx, "export-4k", "sso")
	if err != nil || !check.LicenseValid || !check.Results["export-4k"].Granted || check.Results["sso"].Granted {
		t.Fatalf("entitlements: %+v %v", check, err)
	}
	file, err := c.CheckoutFile(ctx, fp, 2*time.Hour)
	if err != nil || file.Activation.ID != act.ID || file.TTLSeconds != 7200 || file.License.Key != key {
		t.Fatalf("checkout: %+v %v", file, err)
	}
	off, err := c.Deactivate(ctx, fp)
	if err != nil || off.Status != "deactivated" {
		t.Fatalf("deactivate: %+v %v", off, err)
	}
	_, err = c.CheckoutFile(ctx, fp, 0)
	if !errors.Is(err, ErrNoActivation) {
		t.Fatalf("checkout after deactivation: %v", err)
	}

	// Suspended by the vendor: validate says so (signed 200), an activation is a signed 403.
	if _, err := e.manage("POST", "/v1/manage/licenses/"+v.License.ID+"/suspend", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Validate(ctx, ""); err != nil || v.Valid || v.Code != CodeSuspended {
		t.Fatalf("validate when suspended: %+v %v", v, err)
	}
	if _, err := c.Activate(ctx, fp, nil); !errors.Is(err, ErrLicenseNotActive) {
		t.Fatalf("activate when suspended: %v", err)
	}
}

func TestLiveEnsureLicensedThenOffline(t *testing.T) {
	e := live(t)
	key := e.license(t, "node")
	dir := t.TempDir()
	fp := "go-ensure-" + e.run
	ctx := context.Background()
	c, counter := e.client(t, e.base, key, WithCacheDir(dir), WithMachineName("go live"))

	l, err := c.EnsureLicensed(ctx, fp)
	if err != nil || l.Source != Online || l.Calls != 2 || counter.count() != 2 {
		t.Fatalf("first run: %+v (%d HTTP calls) %v", l, counter.count(), err)
	}
	if l.File.Activation.Fingerprint != fp || !l.File.License.HasEntitlement("export-4k") {
		t.Fatalf("%+v", l.File)
	}
	if l, err = c.EnsureLicensed(ctx, fp); err != nil || l.Source != FromCache || counter.count() != 2 {
		t.Fatalf("second run: %+v %v", l, err)
	}

	// A day later (the machine's clock), with no service reachable (a closed port): the cached
	// file (asked for 7 days, cut to the policy's 14-day cap at most) licenses the machine offline.
	later := func() time.Time { return time.Now().Add(25 * time.Hour) }
	offline, offCounter := e.client(t, closedPort(t), key, WithCacheDir(dir), WithClock(later))
	l, err = offline.EnsureLicensed(ctx, fp)
	if err != nil || l.Source != Offline || !errors.Is(l.Unreachable, ErrUnreachable) || offCounter.count() != 1 {
		t.Fatalf("offline: %+v %v", l, err)
	}
	// The cached file verified with no client at all: the pinned key, the tenant, this machine.
	text, err := os.ReadFile(c.CachePath())
	if err != nil {
		t.Fatal(err)
	}
	file, err := VerifyLicenseFile(string(text), e.keys, e.tenant, fp, later())
	if err != nil || file.License.Key != key {
		t.Fatalf("offline verification: %v", err)
	}
	if _, err := VerifyLicenseFile(string(text), e.keys, e.tenant, "another-machine", later()); !errors.Is(err, ErrInvalidFile) {
		t.Fatalf("another machine: %v", err)
	}
	if _, err := VerifyLicenseFile(string(text), e.keys, e.tenant, fp, file.ValidUntil()); !errors.Is(err, ErrInvalidFile) {
		t.Fatalf("after expiry: %v", err)
	}
	// Past the file's end, offline is over.
	gone, _ := e.client(t, closedPort(t), key, WithCacheDir(dir), WithClock(func() time.Time { return file.ValidUntil() }))
	if _, err := gone.EnsureLicensed(ctx, fp); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestLiveFloatingCheckoutHeartbeatReturn(t *testing.T) {
	e := live(t)
	key := e.license(t, "floating") // 1 seat + 1 overage, 60 s leases
	c, _ := e.client(t, e.base, key)
	ctx := context.Background()

	ann, err := c.Checkout(ctx, "ann-"+e.run, &CheckoutOptions{HeartbeatEvery: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	first := ann.Activation()
	if first.LeaseExpiresAt == nil || first.Overage {
		t.Fatalf("%+v", first)
	}
	// The service keeps lease_expires_at to the second: heartbeats every 300 ms move it within
	// a second or two.
	waitFor(t, "heartbeats that renew the lease", func() bool {
		return ann.Heartbeats() >= 2 && ann.Activation().LeaseExpiresAt.After(*first.LeaseExpiresAt)
	})
	if ann.Err() != nil || ann.Activation().LastHeartbeatAt == nil {
		t.Fatalf("the heartbeats did not renew the lease: %v %+v", ann.Err(), ann.Activation())
	}

	// The default interval: a third of the 60 s lease the service granted.
	bob, err := c.Checkout(ctx, "bob-"+e.run, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if d := bob.HeartbeatInterval(); d < 19*time.Second || d > 21*time.Second || !bob.Activation().Overage {
		t.Fatalf("interval %s, overage %v", d, bob.Activation().Overage)
	}
	_, err = c.Checkout(ctx, "cy-"+e.run, nil)
	if !errors.Is(err, ErrOverageMaxExceeded) || !errors.Is(err, ErrLicenseUnavailable) {
		t.Fatalf("a third lease: %v", err)
	}
	if err := ann.Return(ctx); err != nil {
		t.Fatal(err)
	}
	if ann.Activation().Status != "deactivated" {
		t.Fatalf("%+v", ann.Activation())
	}
	beats := ann.Heartbeats()
	cy, err := c.Checkout(ctx, "cy-"+e.run, nil)
	if err != nil {
		t.Fatalf("after a return: %v", err)
	}
	defer cy.Close()
	time.Sleep(700 * time.Millisecond)
	if ann.Heartbeats() != beats {
		t.Fatal("heartbeats after Return")
	}
	// Returned by id without a Lease (after a restart, say): repeating it is harmless.
	if act, err := c.ReturnLicense(ctx, ann.ID()); err != nil || act.Status != "deactivated" {
		t.Fatalf("%+v %v", act, err)
	}
}

func TestLiveFullPoolIsUnavailable(t *testing.T) {
	e := live(t)
	key := e.license(t, "pool") // 1 seat, no overage
	c, _ := e.client(t, e.base, key)
	ctx := context.Background()
	ann, err := c.Checkout(ctx, "ann-"+e.run, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	_, err = c.Checkout(ctx, "bob-"+e.run, nil)
	var apiErr *Error
	if !errors.Is(err, ErrLicenseUnavailable) || errors.Is(err, ErrOverageMaxExceeded) || !errors.As(err, &apiErr) ||
		apiErr.Status != 409 || *apiErr.Limit != 1 {
		t.Fatalf("%v", err)
	}
}

// mitmProxy is a man in the middle on a real TCP port: it forwards every request to the service
// and the service's genuine, signed answer back, after rewrite changes the request body (nil:
// an honest proxy).
type mitm struct {
	url       string
	rewritten int64
	mu        sync.Mutex
	answers   []string // the genuine answers' bodies, as received
	flip      bool     // rewrite answers: "valid":false → "valid":true
}

func (m *mitm) lastAnswer() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.answers) == 0 {
		return ""
	}
	return m.answers[len(m.answers)-1]
}

func mitmProxy(t *testing.T, target string, rewrite func(path string, body []byte) []byte) *mitm {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		m.mu.Lock()
		m.answers = append(m.answers, string(body))
		if m.flip {
			body = bytes.Replace(body, []byte(`"valid":false`), []byte(`"valid":true`), 1)
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		m.mu.Unlock()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return err
	}
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		direct(r)
		if rewrite == nil || r.Body == nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		if changed := rewrite(r.URL.Path, body); !bytes.Equal(changed, body) {
			atomic.AddInt64(&m.rewritten, 1)
			body = changed
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: proxy}
	go server.Serve(ln)
	t.Cleanup(func() { server.Close() })
	m.url = "http://" + ln.Addr().String()
	return m
}

// dropField removes a field from a JSON object body.
func dropField(field string) func(string, []byte) []byte {
	return func(_ string, body []byte) []byte {
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return body
		}
		if _, ok := m[field]; !ok {
			return body
		}
		delete(m, field)
		out, _ := json.Marshal(m)
		return out
	}
}

func TestLiveManInTheMiddleIsRefused(t *testing.T) {
	e := live(t)
	key := e.license(t, "node")
	ctx := context.Background()
	fp := "never-activated-" + e.run

	// Honest proxy: everything verifies (the control).
	honest := mitmProxy(t, e.base, nil)
	hc, _ := e.client(t, honest.url, key)
	v, err := hc.Validate(ctx, fp)
	if err != nil || v.Code != CodeNoActivation {
		t.Fatalf("through an honest proxy: %+v %v", v, err)
	}

	// The proxy drops the fingerprint: the service answers the easier question (VALID, for a
	// machine that was never activated), correctly signed — for a body the client did not send.
	proxy := mitmProxy(t, e.base, dropField("fingerprint"))
	c, _ := e.client(t, proxy.url, key, WithCacheDir(t.TempDir()))
	v, err = c.Validate(ctx, fp)
	if !errors.Is(err, ErrSignature) || v != nil {
		t.Fatalf("a rewritten validate was not refused: %+v %v", v, err)
	}
	if answer := proxy.lastAnswer(); !strings.Contains(answer, `"code":"VALID"`) {
		t.Fatalf("the service did not answer the rewritten question VALID: %s", answer)
	}
	var se *SignatureError
	if !errors.As(err, &se) || se.Reason != SigMismatch || se.Status != 200 {
		t.Fatalf("%v", err)
	}
	// The checkout of a file (answered 422 FINGERPRINT_REQUIRED to the rewritten body) and the
	// recommended use are refused alike, and nothing is cached.
	if _, err := c.CheckoutFile(ctx, fp, 0); !errors.Is(err, ErrSignature) {
		t.Fatalf("checkout: %v", err)
	}
	if _, err := c.EnsureLicensed(ctx, fp); !errors.Is(err, ErrSignature) {
		t.Fatalf("EnsureLicensed: %v", err)
	}
	if _, err := os.Stat(c.CachePath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file was cached through the man in the middle")
	}
	if n := atomic.LoadInt64(&proxy.rewritten); n < 3 {
		t.Fatalf("the proxy rewrote %d requests", n)
	}

	// The proxy swaps the machine of an activation: refused too.
	swap := mitmProxy(t, e.base, func(_ string, body []byte) []byte {
		return bytes.Replace(body, []byte(fp), []byte("other-"+fp), 1)
	})
	sc, _ := e.client(t, swap.url, key)
	if _, err := sc.Activate(ctx, fp, nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("a swapped activation: %v", err)
	}
	if answer := swap.lastAnswer(); !strings.Contains(answer, `"fingerprint":"other-`+fp) {
		t.Fatalf("the service did not activate the swapped machine: %s", answer)
	}

	// The proxy rewrites the answer instead (valid:false → true): refused.
	flip := mitmProxy(t, e.base, nil)
	flip.flip = true
	fc, _ := e.client(t, flip.url, key)
	if _, err := fc.Validate(ctx, fp); !errors.Is(err, ErrSignature) {
		t.Fatalf("a rewritten answer: %v", err)
	}
	if !strings.Contains(flip.lastAnswer(), `"valid":false`) {
		t.Fatalf("nothing to flip in %s", flip.lastAnswer())
	}
}

package licensing

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func TestNewRefusesBadSettings(t *testing.T) {
	keys := pinnedFor("v1", seedKey(1))
	for _, bad := range []struct{ url, tenant, key string }{
		{"http://example.com", "acme", testKey}, // plain http off loopback
		{"ftp://127.0.0.1", "acme", testKey},
		{"https://example.com?x=1", "acme", testKey},
		{"https://example.com", "", testKey},
		{"https://example.com", "acme", ""},
		{"https://example.com", "acme", "a key"},
	} {
		if _, err := New(bad.url, bad.tenant, bad.key, keys); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := New("https://example.com", "acme", testKey, nil); err == nil {
		t.Error("no pinned key accepted")
	}
	for _, good := range []string{"https://example.com/prod/", "http://127.0.0.1:3900", "http://localhost:1", "http://[::1]:80"} {
		if _, err := New(good, "acme", testKey, keys); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}

func TestValidateActivateHeartbeatUsage(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := f.client(t)
	ctx := context.Background()

	v, err := c.Validate(ctx, "fp-1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.Code != CodeNoActivation || v.License.Key != testKey {
		t.Fatalf("%+v", v)
	}
	act, err := c.Activate(ctx, "fp-1", &ActivateOptions{Name: "Ann's laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if act.ID != activationID("fp-1") || *act.Name != "Ann's laptop" || act.Status != "active" {
		t.Fatalf("%+v", act)
	}
	if v, err = c.Validate(ctx, "fp-1"); err != nil || !v.Valid || v.Code != CodeValid {
		t.Fatalf("%+v %v", v, err)
	}
	hb, err := c.Heartbeat(ctx, act.ID)
	if err != nil || hb.LastHeartbeatAt == nil || !hb.LastHeartbeatAt.Equal(t0) {
		t.Fatalf("%+v %v", hb, err)
	}
	rec, err := c.RecordUsage(ctx, "api-calls", 10, &UsageOptions{IdempotencyKey: "job-1"})
	if err != nil || rec.Used != 10 || rec.Remaining != 990 || rec.Replayed {
		t.Fatalf("%+v %v", rec, err)
	}
	again, err := c.RecordUsage(ctx, "api-calls", 10, &UsageOptions{IdempotencyKey: "job-1"})
	if err != nil || again.Used != 10 || !again.Replayed {
		t.Fatalf("a replay: %+v %v", again, err)
	}
	check, err := c.CheckEntitlements(ctx, "export-4k", "sso")
	if err != nil || !check.Results["export-4k"].Granted || check.Results["sso"].Granted {
		t.Fatalf("%+v %v", check, err)
	}
	off, err := c.Deactivate(ctx, "fp-1")
	if err != nil || off.Status != "deactivated" {
		t.Fatalf("%+v %v", off, err)
	}
}

func TestErrorAnswersAreTyped(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := f.client(t)
	ctx := context.Background()
	_, err := c.CheckoutFile(ctx, "never-activated", 0)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "NO_ACTIVATION" || apiErr.RequestID == "" {
		t.Fatalf("%v", err)
	}
	if !errors.Is(err, ErrNoActivation) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrSignature) {
		t.Fatalf("%v matches the wrong sentinels", err)
	}
	f.set(func(f *fakeService) { f.seatLimit = 1 })
	if _, err := c.Activate(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Activate(ctx, "b", nil)
	if !errors.Is(err, ErrLicenseUnavailable) || errors.Is(err, ErrOverageMaxExceeded) {
		t.Fatalf("%v", err)
	}
	if !errors.As(err, &apiErr) || apiErr.Limit == nil || *apiErr.Limit != 1 {
		t.Fatalf("%v", err)
	}
	f.set(func(f *fakeService) { f.signed5xx = true })
	_, err = c.Validate(ctx, "")
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.RetryAfter != time.Second || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a signed 503: %v", err)
	}
}

func TestUnsignedAndUnreachable(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := f.client(t)
	f.set(func(f *fakeService) { f.down = true })
	_, err := c.Validate(context.Background(), "")
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Status != 503 || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("%v", err)
	}
	// A closed port: a transport error.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	closed, err := New("http://"+addr, testTenant, testKey, f.keys())
	if err != nil {
		t.Fatal(err)
	}
	_, err = closed.Validate(context.Background(), "")
	if !errors.As(err, &ue) || ue.Err == nil || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("%v", err)
	}
	// An unsigned 4xx (or 2xx) is not "unreachable": it is refused.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		w.Write([]byte(`{"error":{"code":"FORBIDDEN"}}`))
	}))
	defer plain.Close()
	pc, _ := New(plain.URL, testTenant, testKey, f.keys())
	_, err = pc.Validate(context.Background(), "")
	assertSigReason(t, err, SigMissing)
	if errors.Is(err, ErrUnreachable) {
		t.Fatal("an unsigned 403 taken for unreachable")
	}
}

func TestTamperedAnswersAreRefused(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := f.client(t)
	ctx := context.Background()
	f.set(func(f *fakeService) {
		f.tamper = func(_ string, body []byte) []byte {
			return bytes.Replace(body, []byte(`"valid":false`), []byte(`"valid":true `), 1)
		}
	})
	_, err := c.Validate(ctx, "fp-1")
	assertSigReason(t, err, SigMismatch)

	// An answer signed by a key that is not pinned.
	f.set(func(f *fakeService) { f.tamper, f.kid = nil, "v9" })
	_, err = c.Validate(ctx, "fp-1")
	assertSigReason(t, err, SigUnknownKey)

	// A genuine answer dated an hour ago (a replayed or held answer, or a wrong clock).
	f.set(func(f *fakeService) { f.kid, f.dateShift = "v1", -time.Hour })
	_, err = c.Validate(ctx, "fp-1")
	assertSigReason(t, err, SigStale)
	f.set(func(f *fakeService) { f.dateShift = 0 })
	if _, err := c.Validate(ctx, "fp-1"); err != nil {
		t.Fatal(err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	var hits int32
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt32(&hits, 1)
		http.Redirect(w, r, f.server.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	c, _ := New(redirector.URL, testTenant, testKey, f.keys(), WithClock(clock.Now))
	_, err := c.Validate(context.Background(), "")
	assertSigReason(t, err, SigMissing)
	if f.callCount() != 0 || atomic.LoadInt32(&hits) != 1 {
		t.Fatalf("the redirect was followed (%d calls)", f.callCount())
	}
}

func TestCheckoutFileIsVerifiedAndCachedAtomically(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	dir := filepath.Join(t.TempDir(), "cache")
	c := f.client(t, WithCacheDir(dir))
	ctx := context.Background()
	if _, err := c.OfflineLicense("fp-1"); !errors.Is(err, ErrNoOfflineLicense) {
		t.Fatal(err)
	}
	if _, err := c.Activate(ctx, "fp-1", nil); err != nil {
		t.Fatal(err)
	}
	file, err := c.CheckoutFile(ctx, "fp-1", 3*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if file.Activation.Fingerprint != "fp-1" || !file.ExpiresAt.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("%+v", file)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != filepath.Base(c.CachePath()) {
		t.Fatalf("cache dir holds %v", entries)
	}
	if strings.Contains(entries[0].Name(), testKey) {
		t.Fatal("the key is in the file name")
	}
	info, _ := os.Stat(c.CachePath())
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode())
	}
	cached, err := c.OfflineLicense("fp-1")
	if err != nil || cached.Certificate != file.Certificate {
		t.Fatal(err)
	}
	if _, err := c.OfflineLicense("fp-2"); !errors.Is(err, ErrInvalidFile) {
		t.Fatal(err)
	}
	clock.Add(72 * time.Hour)
	_, err = c.OfflineLicense("fp-1")
	assertFileProblem(t, err, FileExpired)

	// A file for another license in the cache (swapped in) is refused.
	other, _ := New(f.server.URL, testTenant, "OTHER-LICENSE-KEY", f.keys(), WithCacheDir(dir), WithClock(clock.Now))
	data, _ := os.ReadFile(c.CachePath())
	os.WriteFile(other.CachePath(), data, 0o600)
	clock.Set(t0)
	_, err = other.OfflineLicense("fp-1")
	assertFileProblem(t, err, FileWrongLicense)
}

func TestWriteAtomicallyLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "license.lic")
	for _, text := range []string{"first", "second"} {
		if err := writeAtomically(path, []byte(text)); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != text {
			t.Fatal(string(got))
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("%v", entries)
	}
	// A directory in the way: the write fails and the temporary file is removed.
	if err := writeAtomically(filepath.Dir(path), []byte("x")); err == nil {
		t.Fatal("renamed over a directory")
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

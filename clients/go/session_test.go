package licensing

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func sessionClient(t *testing.T, f *fakeService, dir string, opts ...Option) *Client {
	return f.client(t, append([]Option{WithCacheDir(dir), WithMachineName("workstation")}, opts...)...)
}

// The contract's budget: a node-locked app that runs 8 hours a day, asking EnsureLicensed at
// start and every 30 minutes while it runs, makes at most 2 HTTP calls on any day (2 on the first
// day, then 1), counted at the (fake) service, with a fake clock over 30 days. Start times vary
// from day to day by up to an hour either way.
func TestEnsureLicensedCallBudgetOver30Days(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := sessionClient(t, f, t.TempDir())
	ctx := context.Background()
	day0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	total := 0
	for day := 0; day < 30; day++ {
		start := day0.AddDate(0, 0, day).Add(time.Duration((day*37)%120-60) * time.Minute)
		before := f.callCount()
		sources := map[Source]int{}
		for step := 0; step <= 16; step++ { // 8 hours, every 30 minutes
			clock.Set(start.Add(time.Duration(step) * 30 * time.Minute))
			l, err := c.EnsureLicensed(ctx, "fp-ann")
			if err != nil {
				t.Fatalf("day %d step %d: %v", day+1, step, err)
			}
			if l.File.Activation.Fingerprint != "fp-ann" || !l.File.License.HasEntitlement("export-4k") {
				t.Fatalf("day %d: %+v", day+1, l.File)
			}
			sources[l.Source]++
			l.Close()
		}
		calls := f.callCount() - before
		total += calls
		if calls > 2 {
			t.Errorf("day %d: %d calls (%v)", day+1, calls, f.calls[before:])
		}
		if day == 0 && (calls != 2 || f.calls[0] != "POST /v1/integration/activations") {
			t.Errorf("first day: %v", f.calls)
		}
		if day > 0 && calls != 1 {
			t.Errorf("day %d: %d calls, want 1 (%v)", day+1, calls, f.calls[before:])
		}
		if sources[Online] != 1 || sources[Offline] != 0 || sources[FromCache] != 16 {
			t.Errorf("day %d: sources %v", day+1, sources)
		}
	}
	if total != 31 {
		t.Errorf("%d calls in 30 days, want 31", total)
	}
	for _, call := range f.calls {
		if strings.HasSuffix(call, "/heartbeat") || strings.HasSuffix(call, "/validate") {
			t.Errorf("unexpected call %s", call)
		}
	}
}

func TestEnsureLicensedFromCacheMakesNoCall(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	dir := t.TempDir()
	c := sessionClient(t, f, dir)
	ctx := context.Background()
	l, err := c.EnsureLicensed(ctx, "fp-ann")
	if err != nil || l.Source != Online || l.Calls != 2 {
		t.Fatalf("%+v %v", l, err)
	}
	// A new process (a new client) an hour later: straight from the cache.
	clock.Add(time.Hour)
	again := sessionClient(t, f, dir)
	before := f.callCount()
	l, err = again.EnsureLicensed(ctx, "fp-ann")
	if err != nil || l.Source != FromCache || l.Calls != 0 || f.callCount() != before {
		t.Fatalf("%+v %v", l, err)
	}
	// Another machine's fingerprint does not take this machine's file.
	l, err = again.EnsureLicensed(ctx, "fp-bob")
	if err != nil || l.Source != Online || l.File.Activation.Fingerprint != "fp-bob" {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestEnsureLicensedOfflineWhileTheFileIsValid(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	dir := t.TempDir()
	c := sessionClient(t, f, dir, WithFileTTL(3*24*time.Hour))
	ctx := context.Background()
	if _, err := c.EnsureLicensed(ctx, "fp-ann"); err != nil {
		t.Fatal(err)
	}
	// A gateway answers unsigned 503s.
	f.set(func(f *fakeService) { f.down = true })
	clock.Add(25 * time.Hour)
	l, err := c.EnsureLicensed(ctx, "fp-ann")
	if err != nil || l.Source != Offline || !errors.Is(l.Unreachable, ErrUnreachable) {
		t.Fatalf("%+v %v", l, err)
	}
	// The service itself answers a signed 503: offline too.
	f.set(func(f *fakeService) { f.down, f.signed5xx = false, true })
	if l, err = c.EnsureLicensed(ctx, "fp-ann"); err != nil || l.Source != Offline {
		t.Fatalf("%+v %v", l, err)
	}
	// No network at all (a closed port), as a new process with the same cache.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	offline, err := New("http://"+addr, testTenant, testKey, f.keys(), WithCacheDir(dir), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if l, err = offline.EnsureLicensed(ctx, "fp-ann"); err != nil || l.Source != Offline {
		t.Fatalf("%+v %v", l, err)
	}
	// Once the file has expired, offline is over.
	clock.Add(48 * time.Hour)
	_, err = offline.EnsureLicensed(ctx, "fp-ann")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("%v", err)
	}
	// The service is back: licensed online again (the expired file no longer counts: activate,
	// which answers the existing seat, and check out).
	f.set(func(f *fakeService) { f.signed5xx = false })
	if l, err = c.EnsureLicensed(ctx, "fp-ann"); err != nil || l.Source != Online || l.Calls != 2 {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestEnsureLicensedFirstRunOfflineIsNotLicensed(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	f.set(func(f *fakeService) { f.down = true })
	_, err := sessionClient(t, f, t.TempDir()).EnsureLicensed(context.Background(), "fp-ann")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatal(err)
	}
}

func TestEnsureLicensedActivatesAgainWhenTheSeatWasReleased(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := sessionClient(t, f, t.TempDir())
	ctx := context.Background()
	if _, err := c.EnsureLicensed(ctx, "fp-ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deactivate(ctx, "fp-ann"); err != nil {
		t.Fatal(err)
	}
	clock.Add(25 * time.Hour)
	before := f.callCount()
	l, err := c.EnsureLicensed(ctx, "fp-ann")
	if err != nil || l.Source != Online || l.Calls != 3 {
		t.Fatalf("%+v %v", l, err)
	}
	want := []string{"POST /v1/integration/licenses/" + testKey + "/checkout", "POST /v1/integration/activations",
		"POST /v1/integration/licenses/" + testKey + "/checkout"}
	if got := strings.Join(f.calls[before:], ","); got != strings.Join(want, ",") {
		t.Fatal(got)
	}
}

func TestEnsureLicensedRevivesAHeartbeatDeadActivation(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := sessionClient(t, f, t.TempDir())
	ctx := context.Background()
	if _, err := c.EnsureLicensed(ctx, "fp-ann"); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeService) { f.activations["fp-ann"].dead = true })
	clock.Add(25 * time.Hour)
	l, err := c.EnsureLicensed(ctx, "fp-ann")
	if err != nil || l.Source != Online {
		t.Fatalf("%+v %v", l, err)
	}
	if f.heartbeatsOf("fp-ann") != 1 {
		t.Fatal("no heartbeat revived the activation")
	}
}

func TestEnsureLicensedRefusals(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := sessionClient(t, f, t.TempDir())
	ctx := context.Background()
	if _, err := c.EnsureLicensed(ctx, "fp-ann"); err != nil {
		t.Fatal(err)
	}
	clock.Add(25 * time.Hour)

	// A man in the middle rewrites the answer: refused, and the valid cached file does not
	// stand in for it.
	f.set(func(f *fakeService) {
		f.tamper = func(_ string, b []byte) []byte {
			return bytes.Replace(b, []byte(`"request_id":"req_`), []byte(`"request_id":"req-`), 1)
		}
	})
	_, err := c.EnsureLicensed(ctx, "fp-ann")
	if !errors.Is(err, ErrSignature) {
		t.Fatal(err)
	}
	f.set(func(f *fakeService) { f.tamper = nil })

	// Suspended: the verified refusal removes the cached file, so that it cannot license the
	// machine offline afterwards.
	f.set(func(f *fakeService) { f.status = "suspended" })
	_, err = c.EnsureLicensed(ctx, "fp-ann")
	if !errors.Is(err, ErrLicenseNotActive) {
		t.Fatal(err)
	}
	if _, statErr := os.Stat(c.CachePath()); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatal("the cached file survived a LICENSE_NOT_ACTIVE answer")
	}
	f.set(func(f *fakeService) { f.down = true })
	if _, err := c.EnsureLicensed(ctx, "fp-ann"); !errors.Is(err, ErrUnreachable) {
		t.Fatal(err)
	}
}

func TestEnsureLicensedHeartbeatsWhenThePolicyAsks(t *testing.T) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	c := sessionClient(t, f, t.TempDir(), WithHeartbeatSeconds(3600))
	l, err := c.EnsureLicensed(context.Background(), "fp-ann")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first heartbeat", func() bool { return f.heartbeatsOf("fp-ann") == 1 })
	l.Close()
	time.Sleep(50 * time.Millisecond)
	if f.heartbeatsOf("fp-ann") != 1 {
		t.Fatal("heartbeats after Close")
	}
	// Without WithHeartbeatSeconds: none (the budget test checks that too).
	plain := sessionClient(t, f, t.TempDir())
	l, err = plain.EnsureLicensed(context.Background(), "fp-bob")
	if err != nil || l.stop != nil {
		t.Fatal(err)
	}
}

package licensing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func floatingService(t *testing.T, seats, overage, leaseSeconds int) (*fakeService, *testClock) {
	clock := newTestClock(t0)
	f := newFakeService(t, clock)
	f.set(func(f *fakeService) {
		f.floating, f.seatLimit, f.overageLimit, f.leaseSeconds = true, seats, overage, leaseSeconds
	})
	return f, clock
}

func (f *fakeService) heartbeatsOf(fp string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.activations[fp]; ok {
		return a.heartbeats
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheckoutHeartbeatsAtAThirdOfTheLeaseAndReturns(t *testing.T) {
	f, _ := floatingService(t, 2, 0, 900)
	c := f.client(t)
	ctx := context.Background()
	lease, err := c.Checkout(ctx, "ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.StopHeartbeats()
	if lease.HeartbeatInterval() != 300*time.Second {
		t.Fatalf("interval %s, want a third of 900 s", lease.HeartbeatInterval())
	}
	if a := lease.Activation(); a.LeaseExpiresAt == nil || !a.LeaseExpiresAt.Equal(t0.Add(900*time.Second)) {
		t.Fatalf("%+v", a)
	}
	if err := lease.Return(ctx); err != nil {
		t.Fatal(err)
	}
	if lease.Activation().Status != "deactivated" {
		t.Fatal(lease.Activation())
	}
	if f.calls[len(f.calls)-1] != "DELETE /v1/integration/activations/"+activationID("ann") {
		t.Fatal(f.calls)
	}
}

func TestTheHeartbeatGoroutineRunsUntilReturn(t *testing.T) {
	// A 3-second lease: the default interval is 1 s, in real time.
	f, _ := floatingService(t, 2, 0, 3)
	c := f.client(t)
	lease, err := c.Checkout(context.Background(), "ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lease.HeartbeatInterval() != time.Second {
		t.Fatal(lease.HeartbeatInterval())
	}
	waitFor(t, "two heartbeats", func() bool { return lease.Heartbeats() >= 2 && f.heartbeatsOf("ann") >= 2 })
	if err := lease.Close(); err != nil {
		t.Fatal(err)
	}
	beats := f.heartbeatsOf("ann")
	time.Sleep(1500 * time.Millisecond)
	if f.heartbeatsOf("ann") != beats {
		t.Fatal("heartbeats continued after Close")
	}
	if lease.Err() != nil || lease.Heartbeats() < 2 {
		t.Fatal(lease.Err(), lease.Heartbeats())
	}
}

func TestContextCancelStopsHeartbeats(t *testing.T) {
	f, _ := floatingService(t, 2, 0, 900)
	c := f.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var outcomes []error
	lease, err := c.Checkout(ctx, "ann", &CheckoutOptions{
		HeartbeatEvery: 20 * time.Millisecond,
		OnHeartbeat:    func(_ *Activation, err error) { mu.Lock(); outcomes = append(outcomes, err); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three heartbeats", func() bool { return f.heartbeatsOf("ann") >= 3 })
	cancel()
	<-lease.done
	beats := f.heartbeatsOf("ann")
	time.Sleep(100 * time.Millisecond)
	if f.heartbeatsOf("ann") != beats {
		t.Fatal("heartbeats continued after the context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range outcomes {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Returning still works after the context ended.
	if err := lease.Return(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestALapsedLeaseIsCheckedOutAgain(t *testing.T) {
	f, clock := floatingService(t, 1, 0, 60)
	c := f.client(t)
	lease, err := c.Checkout(context.Background(), "ann", &CheckoutOptions{HeartbeatEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Close()
	waitFor(t, "a heartbeat", func() bool { return lease.Heartbeats() >= 1 })
	// The machine slept past its lease: the next heartbeat answers LEASE_EXPIRED, and the lease
	// is checked out again (renewed: the seat was still free).
	clock.Add(2 * time.Minute)
	before := f.callCount()
	waitFor(t, "a new checkout", func() bool {
		a := lease.Activation()
		return a.LeaseExpiresAt != nil && a.LeaseExpiresAt.After(clock.Now())
	})
	if lease.Err() != nil {
		t.Fatal(lease.Err())
	}
	f.mu.Lock()
	var sawExpiry, sawCheckout bool
	for _, call := range f.calls[before:] {
		sawExpiry = sawExpiry || call == "POST /v1/integration/activations/"+activationID("ann")+"/heartbeat"
		sawCheckout = sawCheckout || call == "POST /v1/integration/activations"
	}
	f.mu.Unlock()
	if !sawExpiry || !sawCheckout {
		t.Fatal("no heartbeat-then-checkout")
	}
}

func TestAFullPoolIsLicenseUnavailable(t *testing.T) {
	f, _ := floatingService(t, 1, 0, 900)
	c := f.client(t)
	ctx := context.Background()
	first, err := c.Checkout(ctx, "ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.StopHeartbeats()
	_, err = c.Checkout(ctx, "bob", nil)
	if !errors.Is(err, ErrLicenseUnavailable) || errors.Is(err, ErrOverageMaxExceeded) {
		t.Fatalf("%v", err)
	}
	// Returned: bob gets the seat.
	if err := first.Return(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := c.Checkout(ctx, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	second.StopHeartbeats()
}

func TestAFullPoolWithOverageIsOverageMaxExceeded(t *testing.T) {
	f, _ := floatingService(t, 1, 1, 900)
	c := f.client(t)
	ctx := context.Background()
	var leases []*Lease
	for _, user := range []string{"ann", "bob"} {
		l, err := c.Checkout(ctx, user, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.StopHeartbeats()
		leases = append(leases, l)
	}
	if leases[0].Activation().Overage || !leases[1].Activation().Overage {
		t.Fatal("the second lease should be an overage seat")
	}
	_, err := c.Checkout(ctx, "cy", nil)
	if !errors.Is(err, ErrOverageMaxExceeded) || !errors.Is(err, ErrLicenseUnavailable) {
		t.Fatalf("%v", err)
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) || *apiErr.Limit != 2 {
		t.Fatal(err)
	}
}

package licensing

import (
	"context"
	"errors"
	"sync"
	"time"
)

// CheckoutOptions are the optional settings of a floating checkout.
type CheckoutOptions struct {
	ActivateOptions
	// HeartbeatEvery overrides the heartbeat interval (default: a third of the lease, as the
	// service granted it).
	HeartbeatEvery time.Duration
	// OnHeartbeat, when set, is called (from the heartbeat goroutine) with every outcome.
	OnHeartbeat func(*Activation, error)
}

// Lease is a floating seat checked out by Checkout. Its heartbeats run in a goroutine until
// Return, Close, or the end of the context given to Checkout.
type Lease struct {
	client *Client
	user   string
	opts   CheckoutOptions

	every time.Duration // the heartbeat interval

	mu         sync.Mutex
	activation Activation
	lastErr    error
	beats      int

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// Checkout checks out a lease of a floating license for user (the lease holder's fingerprint:
// a machine, or a user on a shared machine): POST /v1/integration/activations. The same user
// checking out again renews its own lease. The lease is kept alive by heartbeats every third of
// its length, in a goroutine that stops at Return, Close, or when ctx ends — so pass a context
// that lives as long as the lease (the client's timeout bounds each request).
//
// Every seat held (409 TOO_MANY_ACTIVATIONS): an *Error matching ErrLicenseUnavailable, and also
// ErrOverageMaxExceeded when the pool has overage seats (then one validate call, made only on
// this refusal, reads the pool's overage limit).
func (c *Client) Checkout(ctx context.Context, user string, opts *CheckoutOptions) (*Lease, error) {
	l := &Lease{client: c, user: user, done: make(chan struct{})}
	if opts != nil {
		l.opts = *opts
	}
	act, ans, err := c.activate(ctx, user, &l.opts.ActivateOptions)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Code == "TOO_MANY_ACTIVATIONS" {
			if v, verr := c.Validate(ctx, ""); verr == nil && v.License != nil &&
				v.License.Seats.OverageLimit != nil && *v.License.Seats.OverageLimit > 0 {
				apiErr.overage = true
			}
		}
		return nil, err
	}
	l.activation = *act
	every := l.opts.HeartbeatEvery
	if every <= 0 {
		every = time.Minute // a lease without an expiry (node-locked): a slow keep-alive
		if act.LeaseExpiresAt != nil {
			every = act.LeaseExpiresAt.Sub(ans.signedAt) / 3
		}
		if every < time.Second {
			every = time.Second // leases are at least 60 s: this only guards odd clocks
		}
	}
	l.every = every
	beatCtx, cancel := context.WithCancel(ctx)
	l.stop = cancel
	go l.heartbeats(beatCtx, every)
	return l, nil
}

// heartbeats renews the lease every interval. A lease that expired (LEASE_EXPIRED: lapsed,
// returned or reclaimed) is checked out again by the same user, which renews it when nobody took
// its place, else takes a free seat if there is one.
func (l *Lease) heartbeats(ctx context.Context, every time.Duration) {
	defer close(l.done)
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		act, err := l.client.Heartbeat(ctx, l.ID())
		if errors.Is(err, ErrLeaseExpired) {
			act, err = l.client.Activate(ctx, l.user, &l.opts.ActivateOptions)
		}
		if ctx.Err() != nil {
			return // stopped meanwhile: not an outcome
		}
		l.mu.Lock()
		if act != nil {
			l.activation = *act
		}
		l.lastErr = err
		l.beats++
		l.mu.Unlock()
		if l.opts.OnHeartbeat != nil {
			l.opts.OnHeartbeat(act, err)
		}
		timer.Reset(every)
	}
}

// HeartbeatInterval is how often the lease is renewed: a third of the lease the service granted
// (from its signed date to lease_expires_at), or CheckoutOptions.HeartbeatEvery.
func (l *Lease) HeartbeatInterval() time.Duration { return l.every }

// ID is the lease's activation id.
func (l *Lease) ID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.activation.ID
}

// Activation is the lease as the latest answer showed it (LeaseExpiresAt, Overage, ...).
func (l *Lease) Activation() Activation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.activation
}

// Err is the outcome of the latest heartbeat: nil when it renewed the lease (or before the
// first one).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// Heartbeats is how many heartbeats have completed (renewed or failed).
func (l *Lease) Heartbeats() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.beats
}

// StopHeartbeats stops the heartbeat goroutine and waits for it, without returning the lease
// (which then lapses after its lease time).
func (l *Lease) StopHeartbeats() {
	l.stopOnce.Do(l.stop)
	<-l.done
}

// Return stops the heartbeats and returns the lease: its seat is free at once.
func (l *Lease) Return(ctx context.Context) error {
	l.StopHeartbeats()
	act, err := l.client.ReturnLicense(ctx, l.ID())
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.activation = *act
	l.mu.Unlock()
	return nil
}

// Close is Return with a background context (the client's timeout bounds it), for defer.
func (l *Lease) Close() error {
	return l.Return(context.Background())
}

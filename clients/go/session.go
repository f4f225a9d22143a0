package licensing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// RefreshAfter is the age after which EnsureLicensed replaces the cached license file: a file
// issued less than this long ago is trusted without any call.
const RefreshAfter = 24 * time.Hour

// Source says where EnsureLicensed found the license.
type Source int

const (
	// FromCache: the cached file verified and was issued less than RefreshAfter ago; no call.
	FromCache Source = iota
	// Online: a fresh file was checked out (after activating this machine when needed).
	Online
	// Offline: the service could not be reached; the cached file still verifies.
	Offline
)

func (s Source) String() string {
	switch s {
	case FromCache:
		return "cache"
	case Online:
		return "online"
	case Offline:
		return "offline"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Licensed is the answer of EnsureLicensed: the verified license file bound to this machine
// (features and entitlements: File.License), where it came from, and how many HTTP calls it
// took. Close it when the app stops (it stops the heartbeats WithHeartbeatSeconds asked for).
type Licensed struct {
	File   *LicenseFile
	Source Source
	Calls  int
	// Unreachable is, for Source Offline, why the service could not be reached.
	Unreachable error

	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// Close stops the node-locked heartbeats, if any. It never calls the service.
func (l *Licensed) Close() error {
	if l.stop != nil {
		l.once.Do(func() { l.stop(); <-l.done })
	}
	return nil
}

// EnsureLicensed is the recommended use for a node-locked license: call it when the app starts
// (and, if you like, every hour while it runs). With a cache directory (WithCacheDir):
//
//  1. The cached license file verifies (pinned key, tenant, this license, bound to fingerprint,
//     not expired) and was issued less than RefreshAfter ago: licensed, no call at all.
//  2. Otherwise a fresh bound file is checked out (1 call). When the service answers that this
//     machine holds no seat (NO_ACTIVATION: the seat was released) the machine is activated
//     (1 call) and the file checked out again (1 call); with no usable cached file at all (the
//     first run) it activates first, so the first day takes 2 calls and every later day 1. The
//     file is written atomically (temporary file + rename).
//  3. The service cannot be reached (ErrUnreachable: a network error or a 5xx) and the cached
//     file still verifies: licensed offline, until the file expires.
//
// Any other outcome is an error, and the app is not licensed: a verified refusal (an *Error —
// the license suspended, cancelled or expired removes the cached file too), an answer that does
// not verify (ErrSignature: never replaced by the cached file), or unreachable with no valid
// cached file.
func (c *Client) EnsureLicensed(ctx context.Context, fingerprint string) (*Licensed, error) {
	if c.cacheDir == "" {
		return nil, errors.New("licensing: EnsureLicensed needs a cache directory (WithCacheDir)")
	}
	if fingerprint == "" {
		return nil, errors.New("licensing: EnsureLicensed needs this machine's fingerprint")
	}
	cached, cacheErr := c.OfflineLicense(fingerprint)
	if cacheErr == nil && c.now().Sub(cached.IssuedAt) < RefreshAfter {
		return c.licensed(ctx, &Licensed{File: cached, Source: FromCache}), nil
	}
	file, calls, err := c.refresh(ctx, fingerprint, cacheErr == nil)
	switch {
	case err == nil:
		return c.licensed(ctx, &Licensed{File: file, Source: Online, Calls: calls}), nil
	case errors.Is(err, ErrUnreachable) && cacheErr == nil:
		// Verified again: the clock may have moved past its end while we tried.
		if again, verr := c.OfflineLicense(fingerprint); verr == nil {
			return c.licensed(ctx, &Licensed{File: again, Source: Offline, Calls: calls, Unreachable: err}), nil
		}
	case errors.Is(err, ErrLicenseNotActive):
		// A verified answer: the license no longer runs; the file must not keep it running offline.
		if path := c.CachePath(); path != "" {
			os.Remove(path)
		}
	}
	return nil, err
}

// refresh checks out a fresh bound file, activating this machine when it holds no seat.
func (c *Client) refresh(ctx context.Context, fingerprint string, haveFile bool) (*LicenseFile, int, error) {
	calls := 0
	var activation *Activation
	activate := func() error {
		calls++
		opts := &ActivateOptions{Name: c.machineName}
		act, err := c.Activate(ctx, fingerprint, opts)
		activation = act
		return err
	}
	checkout := func() (*LicenseFile, error) {
		calls++
		return c.CheckoutFile(ctx, fingerprint, 0)
	}
	if !haveFile {
		// First run (or the cached file is gone or refused): activating an already active
		// machine answers its activation and changes nothing, so this costs no extra call.
		if err := activate(); err != nil {
			return nil, calls, err
		}
	}
	file, err := checkout()
	if errors.Is(err, ErrNoActivation) && activation == nil {
		if err := activate(); err != nil {
			return nil, calls, err
		}
		file, err = checkout()
	}
	if errors.Is(err, ErrNoActivation) && activation != nil && activation.Status == "active" {
		// Active but still no seat to check out against: a node-locked activation whose
		// heartbeat is overdue (HEARTBEAT_DEAD). Its next heartbeat revives it.
		calls++
		if _, err := c.Heartbeat(ctx, activation.ID); err != nil {
			return nil, calls, err
		}
		file, err = checkout()
	}
	return file, calls, err
}

// licensed starts the node-locked heartbeats WithHeartbeatSeconds asked for: one at once, then
// every third of heartbeat_seconds, in a goroutine until Licensed.Close or the end of ctx.
func (c *Client) licensed(ctx context.Context, l *Licensed) *Licensed {
	if c.heartbeatSec == 0 || l.File.Activation == nil {
		return l
	}
	beatCtx, cancel := context.WithCancel(ctx)
	l.stop, l.done = cancel, make(chan struct{})
	id := l.File.Activation.ID
	every := time.Duration(c.heartbeatSec) * time.Second / 3
	go func() {
		defer close(l.done)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			// At once (the app may have been off for longer than heartbeat_seconds), then
			// every third of it. A missed beat is retried at the next tick.
			c.Heartbeat(beatCtx, id) //nolint:errcheck
			select {
			case <-beatCtx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return l
}

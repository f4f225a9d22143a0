package licensing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds each request, connection included, unless WithTimeout or
	// WithHTTPClient says otherwise.
	DefaultTimeout = 30 * time.Second
	// DefaultFileTTL is the validity CheckoutFile and EnsureLicensed ask for (the policy may cut
	// it: the file's expires_at is the real end). It is how long a machine stays licensed without
	// reaching the service.
	DefaultFileTTL = 7 * 24 * time.Hour
	// maxAnswer bounds the body of an answer read into memory.
	maxAnswer = 1 << 20
	version   = "0.1.0"
)

// Client talks to the Integration API for one license of one tenant. It is safe for concurrent
// use. Every call sends Authorization: License <key>, X-Tenant-Id and a fresh random X-Nonce, and
// verifies the answer's signature against the pinned keys, over the exact bytes it sent, before
// reading anything from it.
type Client struct {
	base         *url.URL
	tenant       string
	licenseKey   string
	keys         Keys
	http         *http.Client
	cacheDir     string
	product      string
	clock        func() time.Time
	fileTTL      time.Duration
	machineName  string
	heartbeatSec int
	userAgent    string
}

// Option configures a Client.
type Option func(*Client) error

// WithCacheDir is where the offline license file is kept (CheckoutFile writes it atomically,
// OfflineLicense and EnsureLicensed read it). EnsureLicensed needs one.
func WithCacheDir(dir string) Option {
	return func(c *Client) error { c.cacheDir = dir; return nil }
}

// WithClock replaces time.Now for every check against the clock: answer dates, file validity,
// the daily refresh of EnsureLicensed. For tests.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithHTTPClient sends the requests with hc (a copy of it that never follows redirects: the
// signed path is the one sent). Its Timeout applies.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil HTTP client")
		}
		copied := *hc
		c.http = &copied
		return nil
	}
}

// WithTimeout bounds each request, connection included (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error { c.http.Timeout = d; return nil }
}

// WithProduct sends the product code with Validate, so that a license for another product
// answers PRODUCT_MISMATCH.
func WithProduct(code string) Option {
	return func(c *Client) error { c.product = code; return nil }
}

// WithFileTTL is the validity asked for offline license files (default DefaultFileTTL; 1 hour to
// 90 days; the policy's max_file_ttl_seconds may cut it).
func WithFileTTL(d time.Duration) Option {
	return func(c *Client) error {
		if d < time.Hour || d > 90*24*time.Hour {
			return fmt.Errorf("file TTL %s is not from 1 hour to 90 days", d)
		}
		c.fileTTL = d
		return nil
	}
}

// WithMachineName is the activation name EnsureLicensed gives this machine (shown to the vendor).
func WithMachineName(name string) Option {
	return func(c *Client) error { c.machineName = name; return nil }
}

// WithHeartbeatSeconds tells the client the node-locked policy's heartbeat_seconds: the
// Licensed that EnsureLicensed returns then heartbeats every third of it until it is closed.
// Leave it out for policies without heartbeat_seconds (the default): no heartbeats.
func WithHeartbeatSeconds(seconds int) Option {
	return func(c *Client) error {
		if seconds < 60 || seconds > 86400 {
			return fmt.Errorf("heartbeat_seconds %d is not from 60 to 86400", seconds)
		}
		c.heartbeatSec = seconds
		return nil
	}
}

// WithUserAgent replaces the User-Agent sent.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.userAgent = ua; return nil }
}

// New builds a client for the service at baseURL (https://, or http:// to a loopback address for
// local testing; a path prefix is kept), tenant tenantID and the end user's licenseKey, trusting
// the pinned keys only (at least one).
func New(baseURL, tenantID, licenseKey string, keys Keys, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	tenantID, licenseKey = strings.TrimSpace(tenantID), strings.TrimSpace(licenseKey)
	if tenantID == "" || !visibleASCII(tenantID) {
		return nil, errors.New("licensing: a tenant id is required")
	}
	if licenseKey == "" || !visibleASCII(licenseKey) || strings.ContainsAny(licenseKey, " \t") {
		return nil, errors.New("licensing: a license key (visible ASCII) is required")
	}
	if len(keys) == 0 {
		return nil, errors.New("licensing: at least one pinned signing key is required")
	}
	pinned := make(Keys, len(keys))
	for kid, key := range keys {
		pinned[kid] = append([]byte(nil), key...)
	}
	c := &Client{
		base:       base,
		tenant:     tenantID,
		licenseKey: licenseKey,
		keys:       pinned,
		http:       &http.Client{Timeout: DefaultTimeout},
		clock:      time.Now,
		fileTTL:    DefaultFileTTL,
		userAgent:  "licensing-go/" + version,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("licensing: %w", err)
		}
	}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

func parseBaseURL(text string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("licensing: base URL %q: %w", text, err)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
	if host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && loopback)) {
		return nil, fmt.Errorf("licensing: base URL %q must be https:// (http:// only to a loopback address)", text)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("licensing: base URL %q has a query, fragment or user", text)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// TenantID is the tenant the client acts for.
func (c *Client) TenantID() string { return c.tenant }

// now is the client's clock.
func (c *Client) now() time.Time { return c.clock() }

// answer is a verified answer.
type answer struct {
	status   int
	body     []byte
	header   http.Header
	signedAt time.Time
}

// call sends method to /v1/integration/{segments...} with body (serialised once; nil for none)
// and returns the verified answer of a 2xx, or the error: *UnreachableError, *SignatureError,
// *Error (a verified error envelope).
func (c *Client) call(ctx context.Context, method string, segments []string, body any, extra http.Header) (*answer, error) {
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	u, err := url.Parse(c.base.String() + "/v1/integration/" + strings.Join(escaped, "/"))
	if err != nil {
		return nil, fmt.Errorf("licensing: request URL: %w", err)
	}
	var sent []byte
	if body != nil {
		// Serialised once: the answer's signature covers these exact bytes.
		if sent, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("licensing: request body: %w", err)
		}
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(sent))
	if err != nil {
		return nil, fmt.Errorf("licensing: request: %w", err)
	}
	if sent == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for name, values := range extra {
		req.Header[name] = values
	}
	req.Header.Set("Authorization", "License "+c.licenseKey)
	req.Header.Set("X-Tenant-Id", c.tenant)
	req.Header.Set("X-Nonce", nonce)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if sent != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// What net/http writes on the request line, and therefore what the service signs.
	pathAndQuery := req.URL.RequestURI()

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	signature := resp.Header.Get("X-Signature")
	date := resp.Header.Get("X-Signature-Date")
	if signature == "" && resp.StatusCode >= 500 {
		return nil, &UnreachableError{Status: resp.StatusCode}
	}
	received, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, &UnreachableError{Err: err}
	}
	if len(received) > maxAnswer {
		return nil, &SignatureError{Reason: SigMalformed, Detail: "the answer is larger than 1 MiB", Status: resp.StatusCode}
	}
	sentReq := SentRequest{Method: method, PathAndQuery: pathAndQuery, Tenant: c.tenant, Nonce: nonce, Body: sent}
	if err := VerifyAnswer(c.keys, sentReq, signature, date, received, c.now()); err != nil {
		var se *SignatureError
		if errors.As(err, &se) {
			se.Status = resp.StatusCode
		}
		return nil, err
	}
	signedAt, _ := time.Parse(time.RFC3339Nano, date) // parsed by VerifyAnswer already
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var envelope errorEnvelope
		if err := json.Unmarshal(received, &envelope); err != nil || envelope.Error.Code == "" {
			return nil, fmt.Errorf("licensing: unexpected %d answer: %.200s", resp.StatusCode, received)
		}
		apiErr := &Error{
			Status:    resp.StatusCode,
			Code:      envelope.Error.Code,
			Message:   envelope.Error.Message,
			Type:      envelope.Error.Type,
			RequestID: envelope.Meta.RequestID,
			Limit:     envelope.Error.Limit,
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			apiErr.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, apiErr
	}
	return &answer{status: resp.StatusCode, body: received, header: resp.Header, signedAt: signedAt}, nil
}

// decode reads the data of a verified success envelope into out.
func (a *answer) decode(out any) error {
	envelope := struct {
		Data json.RawMessage `json:"data"`
	}{}
	if err := json.Unmarshal(a.body, &envelope); err != nil || len(envelope.Data) == 0 {
		return fmt.Errorf("licensing: unexpected answer: %.200s", a.body)
	}
	if err := json.Unmarshal(envelope.Data, out); err != nil {
		return fmt.Errorf("licensing: unexpected answer: %w", err)
	}
	return nil
}

// post is call with POST, decoding the data into out.
func (c *Client) post(ctx context.Context, segments []string, body any, out any) (*answer, error) {
	a, err := c.call(ctx, http.MethodPost, segments, body, nil)
	if err != nil {
		return nil, err
	}
	return a, a.decode(out)
}

// newNonce is 32 random bytes, hex (64 characters).
func newNonce() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("licensing: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Validate asks whether the license may be used — for this machine when fingerprint is not
// empty (then it must hold a seat: else NO_ACTIVATION), for the client's product, and with these
// entitlements. The answer is 200 whatever the license's state: read Valid and Code.
func (c *Client) Validate(ctx context.Context, fingerprint string, entitlements ...string) (*Validation, error) {
	body := struct {
		Fingerprint  string   `json:"fingerprint,omitempty"`
		Product      string   `json:"product,omitempty"`
		Entitlements []string `json:"entitlements,omitempty"`
	}{fingerprint, c.product, entitlements}
	var v Validation
	if _, err := c.post(ctx, []string{"licenses", c.licenseKey, "validate"}, body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ActivateOptions are the optional fields of an activation.
type ActivateOptions struct {
	Name     string         // shown to the vendor, 1-255 characters
	Hostname string         // 1-255 characters
	Metadata map[string]any // at most 50 keys, 8 KiB
}

type activateBody struct {
	LicenseKey  string         `json:"license_key"`
	Fingerprint string         `json:"fingerprint"`
	Name        string         `json:"name,omitempty"`
	Hostname    string         `json:"hostname,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

// Activate takes a seat for this machine's fingerprint (on a floating license: checks out or
// renews its lease; Checkout does that and keeps the lease alive). Repeating it for an active
// fingerprint answers the existing activation. Every seat taken: an *Error matching
// ErrLicenseUnavailable.
func (c *Client) Activate(ctx context.Context, fingerprint string, opts *ActivateOptions) (*Activation, error) {
	a, _, err := c.activate(ctx, fingerprint, opts)
	return a, err
}

func (c *Client) activate(ctx context.Context, fingerprint string, opts *ActivateOptions) (*Activation, *answer, error) {
	body := activateBody{LicenseKey: c.licenseKey, Fingerprint: fingerprint}
	if opts != nil {
		body.Name, body.Hostname, body.Metadata = opts.Name, opts.Hostname, opts.Metadata
	}
	var act Activation
	ans, err := c.post(ctx, []string{"activations"}, body, &act)
	if err != nil {
		return nil, nil, err
	}
	return &act, ans, nil
}

// Deactivate frees this machine's seat (or returns its lease) by fingerprint.
func (c *Client) Deactivate(ctx context.Context, fingerprint string) (*Activation, error) {
	body := struct {
		LicenseKey  string `json:"license_key"`
		Fingerprint string `json:"fingerprint"`
	}{c.licenseKey, fingerprint}
	var act Activation
	if _, err := c.post(ctx, []string{"activations", "deactivate"}, body, &act); err != nil {
		return nil, err
	}
	return &act, nil
}

// ReturnLicense returns a floating lease (or frees a seat) by its activation id:
// DELETE /v1/integration/activations/{id}. Repeating it is harmless.
func (c *Client) ReturnLicense(ctx context.Context, leaseID string) (*Activation, error) {
	a, err := c.call(ctx, http.MethodDelete, []string{"activations", leaseID}, nil, nil)
	if err != nil {
		return nil, err
	}
	var act Activation
	if err := a.decode(&act); err != nil {
		return nil, err
	}
	return &act, nil
}

// Heartbeat renews an activation's lease (node-locked: records that it is alive). A lapsed,
// returned or reclaimed lease is an *Error matching ErrLeaseExpired: check out again.
func (c *Client) Heartbeat(ctx context.Context, activationID string) (*Activation, error) {
	var act Activation
	if _, err := c.post(ctx, []string{"activations", activationID, "heartbeat"}, struct{}{}, &act); err != nil {
		return nil, err
	}
	return &act, nil
}

// UsageOptions are the optional fields of a usage record.
type UsageOptions struct {
	// IdempotencyKey (X-Idempotency-Key, 1-255 printable ASCII characters): a retry with the same
	// key and body is counted once (for 48 hours). Recommended for every record.
	IdempotencyKey string
	Timestamp      time.Time // default: now (at most 60 s ahead, 7 days old)
	Metadata       map[string]any
}

// RecordUsage counts quantity (1 to 1,000,000,000) of a metered entitlement. Past a hard limit:
// an *Error with Code QUOTA_EXCEEDED, nothing counted.
func (c *Client) RecordUsage(ctx context.Context, metric string, quantity int64, opts *UsageOptions) (*UsageRecord, error) {
	body := struct {
		LicenseKey string         `json:"license_key"`
		Metric     string         `json:"metric"`
		Quantity   int64          `json:"quantity"`
		Timestamp  string         `json:"timestamp,omitempty"`
		Metadata   map[string]any `json:"metadata,omitempty"`
	}{LicenseKey: c.licenseKey, Metric: metric, Quantity: quantity}
	var extra http.Header
	if opts != nil {
		if !opts.Timestamp.IsZero() {
			body.Timestamp = opts.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		body.Metadata = opts.Metadata
		if opts.IdempotencyKey != "" {
			extra = http.Header{"X-Idempotency-Key": {opts.IdempotencyKey}}
		}
	}
	a, err := c.call(ctx, http.MethodPost, []string{"usage", "record"}, body, extra)
	if err != nil {
		return nil, err
	}
	var rec UsageRecord
	if err := a.decode(&rec); err != nil {
		return nil, err
	}
	rec.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	return &rec, nil
}

// CheckEntitlements asks which of features (1-100 names) the license grants now, with metered
// usage.
func (c *Client) CheckEntitlements(ctx context.Context, features ...string) (*EntitlementCheck, error) {
	body := struct {
		LicenseKey string   `json:"license_key"`
		Features   []string `json:"features"`
	}{c.licenseKey, features}
	var check EntitlementCheck
	if _, err := c.post(ctx, []string{"entitlements", "check"}, body, &check); err != nil {
		return nil, err
	}
	return &check, nil
}

// CheckoutFile downloads a signed offline license file bound to this machine's activation
// (fingerprint must hold a seat: else an *Error matching ErrNoActivation), valid for ttl (0: the
// client's file TTL; the policy may cut it: the file's ExpiresAt is the real end), verifies it
// like VerifyLicenseFile with that fingerprint, and with a cache directory stores it there
// atomically.
func (c *Client) CheckoutFile(ctx context.Context, fingerprint string, ttl time.Duration) (*LicenseFile, error) {
	if ttl == 0 {
		ttl = c.fileTTL
	}
	body := struct {
		Fingerprint string `json:"fingerprint"`
		TTLSeconds  int64  `json:"ttl_seconds"`
	}{fingerprint, int64(ttl / time.Second)}
	var got checkoutAnswer
	if _, err := c.post(ctx, []string{"licenses", c.licenseKey, "checkout"}, body, &got); err != nil {
		return nil, err
	}
	file, err := c.verifyFile(got.Certificate, fingerprint)
	if err != nil {
		return nil, err
	}
	if path := c.CachePath(); path != "" {
		if err := writeAtomically(path, []byte(got.Certificate)); err != nil {
			return nil, fmt.Errorf("licensing: cache: %w", err)
		}
	}
	return file, nil
}

// OfflineLicense is the cached license file, verified now (bound to fingerprint when it is not
// empty). ErrNoOfflineLicense when nothing is cached.
func (c *Client) OfflineLicense(fingerprint string) (*LicenseFile, error) {
	path := c.CachePath()
	if path == "" {
		return nil, ErrNoOfflineLicense
	}
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoOfflineLicense
	}
	if err != nil {
		return nil, fmt.Errorf("licensing: cache: %w", err)
	}
	return c.verifyFile(string(text), fingerprint)
}

// CachePath is where the license file of this tenant and license is cached ("" without a cache
// directory): one file per (tenant, license), named by a hash so the key is not in the name.
func (c *Client) CachePath() string {
	if c.cacheDir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(c.tenant + "\x00" + c.licenseKey))
	return filepath.Join(c.cacheDir, "license-"+hex.EncodeToString(sum[:])[:32]+".lic")
}

func (c *Client) verifyFile(text, fingerprint string) (*LicenseFile, error) {
	file, err := VerifyLicenseFile(text, c.keys, c.tenant, fingerprint, c.now())
	if err != nil {
		return nil, err
	}
	if file.License.Key != c.licenseKey {
		return nil, fileErr(FileWrongLicense, "the file is for another license")
	}
	return file, nil
}

// writeAtomically writes data to a new temporary file beside path (owner-only), flushes it to
// disk and renames it over path: a reader sees the old file or the new one, never a part.
func writeAtomically(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

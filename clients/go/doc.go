// Package licensing is the Go client that software vendors embed in their apps to talk to the
// licensing service's Integration API with the end user's license key as the credential
// (Authorization: License <key>, X-Tenant-Id, a fresh X-Nonce per request).
//
// Every answer is verified before anything of it is read: an Ed25519 signature of version 2 over
// the request as sent (method, path and query, tenant, nonce, the exact body bytes) and the answer
// (its X-Signature-Date and body), by one of the tenant's public keys pinned in the app at build
// time. An answer that does not verify is an error matching ErrSignature, never used.
//
// The recommended use is Client.EnsureLicensed: it answers from the cached, signed, machine-bound
// license file (no network at all) while that file is less than a day old, refreshes it with one
// call a day otherwise, activates this machine when the service says it holds no seat, and keeps
// working offline with the cached file while the service cannot be reached.
//
// Floating licenses are checked out with Client.Checkout, which returns a Lease that sends its
// heartbeats in a goroutine every third of the lease until Lease.Return, Lease.Close or the
// context given to Checkout ends.
//
// The wire format is docs/signing.md (signed answers, offline license files) and docs/api.md
// (routes, envelope, error codes) of the service's repository.
package licensing

package licensing_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"

	licensing "github.com/licensing/licensing-go"
)

// The README's example (compiled, not run: it needs a service).
func ExampleClient_EnsureLicensed() {
	ctx := context.Background()
	licenseKey, machineFingerprint, userCacheDir := "SHD02-RH6CA-MVCWT-XQXJT-DCBR3", "8c1f-ann-laptop", "/home/ann/.cache"
	run := func() error {
		keys := licensing.MustParseKeys(map[string]string{ // from GET /v1/public/tenants/acme/signing-keys, at build time
			"v1": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		})
		client, err := licensing.New("https://licensing.example.com", "acme", licenseKey, keys,
			licensing.WithCacheDir(filepath.Join(userCacheDir, "acme-desktop")))
		if err != nil {
			return err
		}
		lic, err := client.EnsureLicensed(ctx, machineFingerprint) // at start (and hourly, if you like)
		if err != nil {
			return fmt.Errorf("not licensed: %w", err) // errors.Is(err, licensing.ErrUnreachable): offline, no valid file
		}
		defer lic.Close()
		if lic.File.License.HasEntitlement("export-4k") {
			fmt.Println("4K export enabled")
		}
		log.Printf("licensed (%s) until %s", lic.Source, lic.File.ValidUntil())
		return nil
	}
	_ = run
}

func ExampleClient_Checkout() {
	ctx := context.Background()
	var client *licensing.Client // built with licensing.New
	run := func() error {
		lease, err := client.Checkout(ctx, "render-node-7", nil)
		switch {
		case errors.Is(err, licensing.ErrOverageMaxExceeded):
			return fmt.Errorf("every seat, overage included, is in use: %w", err)
		case errors.Is(err, licensing.ErrLicenseUnavailable):
			return fmt.Errorf("every seat is in use: %w", err)
		case err != nil:
			return err
		}
		defer lease.Close() // stops the heartbeats and returns the lease
		// ... work while the lease heartbeats in the background ...
		return lease.Err()
	}
	_ = run
}

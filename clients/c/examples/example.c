/*
 * The C ABI end to end against a running service: the recommended use, validate, a usage
 * record, the offline file with no server, a floating lease with heartbeats, and a man in the
 * middle refused. Exits non-zero at the first unexpected outcome (test.sh runs it).
 *
 * Environment: LICENSING_BASE_URL, LICENSING_TENANT_ID, LICENSING_PUBLIC_KEY_V1,
 * LICENSING_LICENSE_KEY (node-locked, with a metered "api-calls"), LICENSING_FLOATING_KEY
 * (floating, one seat), LICENSING_CACHE_DIR; optional: LICENSING_OFFLINE_URL (where nothing
 * listens), LICENSING_MITM_URL (a proxy that rewrites request bodies), LICENSING_RUN (a suffix
 * for the fingerprints).
 *
 *   cc -std=c11 example.c -I../include -L../../../target/debug -llicensing -o example
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "licensing.h"

static int passes = 0, failures = 0;

/* Checks a condition; reports the library's last error with it. */
#define CHECK(cond, what)                                                                     \
  do {                                                                                        \
    if (cond) {                                                                               \
      printf("ok   %s\n", what);                                                              \
      passes++;                                                                               \
    } else {                                                                                  \
      const char *code = licensing_last_error_code();                                        \
      printf("FAIL %s (%s: %s%s%s)\n", what, licensing_status_name(licensing_last_error_status()), \
             licensing_last_error_message(), code ? " code " : "", code ? code : "");        \
      failures++;                                                                             \
    }                                                                                         \
  } while (0)

static const char *env(const char *name) {
  const char *value = getenv(name);
  if (!value || !*value) {
    fprintf(stderr, "example: %s is not set\n", name);
    exit(2);
  }
  return value;
}

static int contains(const char *json, const char *needle) {
  return json != NULL && strstr(json, needle) != NULL;
}

/* A client for `key` at `base_url`. */
static licensing_client_t *client_for(const char *base_url, const char *key) {
  licensing_options_t *options = licensing_options_new();
  licensing_options_set_base_url(options, base_url);
  licensing_options_set_tenant_id(options, env("LICENSING_TENANT_ID"));
  licensing_options_set_license_key(options, key);
  /* Pinned at build time: GET /v1/public/tenants/{tenant}/signing-keys. */
  licensing_options_pin_key(options, "v1", env("LICENSING_PUBLIC_KEY_V1"));
  licensing_options_set_cache_dir(options, env("LICENSING_CACHE_DIR"));
  licensing_options_set_timeout_ms(options, 10000);
  licensing_client_t *client = NULL;
  licensing_status_t status = licensing_client_new(options, &client);
  licensing_options_free(options);
  if (status != LICENSING_OK) {
    fprintf(stderr, "example: %s\n", licensing_last_error_message());
    exit(2);
  }
  return client;
}

static void on_heartbeat(licensing_status_t status, const char *text, void *user_data) {
  int *beats = (int *)user_data;
  if (status == LICENSING_OK) {
    (*beats)++;
  } else {
    fprintf(stderr, "heartbeat failed: %s\n", text);
  }
}

int main(void) {
  const char *base_url = env("LICENSING_BASE_URL");
  const char *run = getenv("LICENSING_RUN") ? getenv("LICENSING_RUN") : "local";
  char fingerprint[128], other[128];
  snprintf(fingerprint, sizeof fingerprint, "c-example-%s", run);
  snprintf(other, sizeof other, "c-example-other-%s", run);
  char *json = NULL;
  printf("liblicensing %s\n", licensing_version());

  /* 1. The recommended use: activate + check out a bound file on the first run... */
  licensing_client_t *client = client_for(base_url, env("LICENSING_LICENSE_KEY"));
  licensing_status_t status = licensing_ensure_licensed(client, fingerprint, "C example", &json);
  CHECK(status == LICENSING_OK && contains(json, "\"source\":\"checkout\"") &&
            contains(json, "\"calls\":2") && contains(json, "\"export-4k\":"),
        "first run: activated and checked out a bound file (2 calls)");
  licensing_string_free(json);
  /* ... and no call at all while the cached file is less than a day old. */
  status = licensing_ensure_licensed(client, fingerprint, NULL, &json);
  CHECK(status == LICENSING_OK && contains(json, "\"source\":\"cache\"") &&
            contains(json, "\"calls\":0"),
        "second start: licensed from the cache (0 calls)");
  licensing_string_free(json);

  /* 2. Validate this machine. */
  status = licensing_validate(client, fingerprint, &json);
  CHECK(status == LICENSING_OK && contains(json, "\"code\":\"VALID\""), "validate: VALID");
  licensing_string_free(json);
  status = licensing_validate(client, other, &json);
  CHECK(status == LICENSING_OK && contains(json, "\"code\":\"NO_ACTIVATION\""),
        "validate another machine: NO_ACTIVATION");
  licensing_string_free(json);

  /* 3. A usage record (idempotent on its key). */
  char idempotency[64];
  snprintf(idempotency, sizeof idempotency, "c-example-%s-%ld", run, (long)time(NULL));
  status = licensing_record_usage(client, "api-calls", 5, idempotency, &json);
  CHECK(status == LICENSING_OK && contains(json, "\"quantity\":5"), "usage record: 5 api-calls");
  licensing_string_free(json);
  status = licensing_record_usage(client, "api-calls", 5000, NULL, NULL);
  CHECK(status == LICENSING_ERR_API && strcmp(licensing_last_error_code(), "QUOTA_EXCEEDED") == 0,
        "usage over the limit: QUOTA_EXCEEDED");

  /* 4. No server: the cached bound file verifies offline. */
  const char *offline_url = getenv("LICENSING_OFFLINE_URL") ? getenv("LICENSING_OFFLINE_URL")
                                                            : "http://127.0.0.1:9";
  licensing_client_t *offline = client_for(offline_url, env("LICENSING_LICENSE_KEY"));
  status = licensing_validate(offline, fingerprint, NULL);
  CHECK(status == LICENSING_ERR_TRANSPORT, "no server: validate is a transport error");
  status = licensing_offline_license(offline, fingerprint, &json);
  CHECK(status == LICENSING_OK && contains(json, fingerprint),
        "no server: the cached file verifies, bound to this machine");
  licensing_string_free(json);
  status = licensing_offline_license(offline, other, NULL);
  CHECK(status == LICENSING_ERR_FILE && strcmp(licensing_last_error_code(), "wrong_fingerprint") == 0,
        "no server: the file is refused for another machine");
  licensing_client_free(offline);

  /* 5. A floating lease: check out, heartbeat (explicitly and in the background), return. */
  licensing_client_t *pool = client_for(base_url, env("LICENSING_FLOATING_KEY"));
  licensing_lease_t *lease = NULL;
  status = licensing_lease_checkout(pool, fingerprint, NULL, &lease);
  CHECK(status == LICENSING_OK, "floating: lease checked out");
  if (lease) {
    printf("     lease %s\n", licensing_lease_id(lease));
    status = licensing_lease_heartbeat(lease, &json);
    CHECK(status == LICENSING_OK && contains(json, "\"lease_expires_at\":\"20"),
          "floating: heartbeat renewed the lease");
    licensing_string_free(json);
    int beats = 0;
    licensing_lease_start_heartbeat(lease, 1, on_heartbeat, &beats);
    struct timespec pause = {2, 500000000};
    nanosleep(&pause, NULL);
    licensing_lease_stop_heartbeat(lease);
    CHECK(beats >= 2, "floating: background heartbeats every second");
    licensing_lease_t *second = NULL;
    status = licensing_lease_checkout(pool, other, NULL, &second);
    CHECK(status == LICENSING_ERR_LICENSE_UNAVAILABLE && second == NULL,
          "floating: the only seat is taken (LICENSING_ERR_LICENSE_UNAVAILABLE)");
    status = licensing_lease_return(lease, &json);
    CHECK(status == LICENSING_OK && contains(json, "\"status\":\"deactivated\""),
          "floating: lease returned");
    licensing_string_free(json);
    licensing_lease_free(lease);
    status = licensing_lease_checkout(pool, other, NULL, &second);
    CHECK(status == LICENSING_OK, "floating: the returned seat is free for another machine");
    licensing_lease_return(second, NULL);
    licensing_lease_free(second);
  }
  licensing_client_free(pool);

  /* 6. A man in the middle who rewrites the request gets the genuine answer refused. */
  const char *mitm_url = getenv("LICENSING_MITM_URL");
  if (mitm_url && *mitm_url) {
    licensing_client_t *mitm = client_for(mitm_url, env("LICENSING_LICENSE_KEY"));
    status = licensing_validate(mitm, fingerprint, &json);
    CHECK(status == LICENSING_ERR_UNVERIFIED && json == NULL &&
              strcmp(licensing_last_error_code(), "bad_signature") == 0,
          "man in the middle: the answer is refused (LICENSING_ERR_UNVERIFIED)");
    licensing_client_free(mitm);
  }

  /* Free the seat again. */
  status = licensing_deactivate(client, fingerprint, NULL);
  CHECK(status == LICENSING_OK, "deactivated this machine");
  licensing_client_free(client);
  printf("example.c: %d passed, %d failed\n", passes, failures);
  return failures == 0 ? 0 : 1;
}

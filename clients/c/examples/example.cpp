// The C++ wrapper (licensing.hpp) end to end against a running service: the same ground as
// example.c, with RAII handles and exceptions. Exits non-zero at any unexpected outcome
// (test.sh runs it). Environment: as example.c.
//
//   c++ -std=c++17 example.cpp -I../include -L../../../target/debug -llicensing -o example
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "licensing.hpp"

namespace {

int passes = 0, failures = 0;

void check(bool ok, const std::string &what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n";
  (ok ? passes : failures)++;
}

/// Runs `f`, expecting licensing::Error with `status` (and `code`, if given).
template <typename F>
void expect_error(F &&f, licensing_status_t status, const std::string &code,
                  const std::string &what) {
  try {
    f();
    check(false, what + " (no error)");
  } catch (const licensing::Error &e) {
    bool ok = e.status() == status && (code.empty() || e.code() == code);
    if (!ok) std::cout << "     got " << e.status_name() << " " << e.code() << ": " << e.what() << "\n";
    check(ok, what);
  }
}

std::string env(const char *name) {
  const char *value = std::getenv(name);
  if (!value || !*value) {
    std::cerr << "example: " << name << " is not set\n";
    std::exit(2);
  }
  return value;
}

bool contains(const std::string &json, const std::string &needle) {
  return json.find(needle) != std::string::npos;
}

licensing::Client client_for(const std::string &base_url, const std::string &key) {
  return licensing::Client(licensing::Options{}
                               .base_url(base_url)
                               .tenant_id(env("LICENSING_TENANT_ID"))
                               .license_key(key)
                               .pin_key("v1", env("LICENSING_PUBLIC_KEY_V1"))
                               .cache_dir(env("LICENSING_CACHE_DIR") + "/cpp")
                               .timeout_ms(10000));
}

}  // namespace

int main() try {
  const std::string base_url = env("LICENSING_BASE_URL");
  const char *run_env = std::getenv("LICENSING_RUN");
  const std::string run = run_env ? run_env : "local";
  const std::string fingerprint = "cpp-example-" + run, other = "cpp-example-other-" + run;

  // The recommended use.
  auto client = client_for(base_url, env("LICENSING_LICENSE_KEY"));
  std::string result = client.ensure_licensed(fingerprint, std::string("C++ example"));
  check(contains(result, "\"source\":\"checkout\"") && contains(result, "\"calls\":2"),
        "first run: activated and checked out a bound file (2 calls)");
  result = client.ensure_licensed(fingerprint);
  check(contains(result, "\"source\":\"cache\"") && contains(result, "\"calls\":0"),
        "second start: licensed from the cache (0 calls)");

  check(contains(client.validate(fingerprint), "\"code\":\"VALID\""), "validate: VALID");
  std::string usage = client.record_usage("api-calls", 3);
  check(contains(usage, "\"quantity\":3"), "usage record: 3 api-calls");

  // No server: the cached file verifies offline, through a client and with the keys alone.
  const char *offline_env = std::getenv("LICENSING_OFFLINE_URL");
  auto offline = client_for(offline_env ? offline_env : "http://127.0.0.1:9",
                            env("LICENSING_LICENSE_KEY"));
  expect_error([&] { offline.validate(fingerprint); }, LICENSING_ERR_TRANSPORT, "",
               "no server: validate is a transport error");
  check(contains(offline.offline_license(fingerprint), fingerprint),
        "no server: the cached file verifies, bound to this machine");
  std::ifstream file(offline.cache_path());
  std::stringstream certificate;
  certificate << file.rdbuf();
  licensing::Keys keys;
  keys.pin("v1", env("LICENSING_PUBLIC_KEY_V1"));
  check(contains(keys.verify_license_file(certificate.str(), env("LICENSING_TENANT_ID"), fingerprint),
                 "\"format\":\"licensing-file/v1\""),
        "no server: the file verifies with the pinned keys alone");
  expect_error([&] { keys.verify_license_file(certificate.str(), "another-tenant", fingerprint); },
               LICENSING_ERR_FILE, "wrong_tenant", "the file is refused for another tenant");

  // A floating lease, heartbeating in the background, then returned.
  auto pool = client_for(base_url, env("LICENSING_FLOATING_KEY"));
  {
    licensing::Lease lease = pool.checkout_lease(fingerprint);
    check(!lease.id().empty(), "floating: lease " + lease.id());
    std::atomic<int> beats{0};
    lease.start_heartbeat(1, [&](licensing_status_t status, const std::string &) {
      if (status == LICENSING_OK) beats++;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    lease.stop_heartbeat();
    check(beats >= 2, "floating: background heartbeats every second");
    expect_error([&] { pool.checkout_lease(other); }, LICENSING_ERR_LICENSE_UNAVAILABLE,
                 "TOO_MANY_ACTIVATIONS", "floating: the only seat is taken");
    check(contains(lease.give_back(), "\"status\":\"deactivated\""), "floating: lease returned");
    expect_error([&] { lease.heartbeat(); }, LICENSING_ERR_API, "LEASE_EXPIRED",
                 "floating: a returned lease cannot be renewed");
  }
  {
    licensing::Lease second = pool.checkout_lease(other);
    check(true, "floating: the returned seat is free for another machine");
    second.give_back();
  }

  // A man in the middle.
  if (const char *mitm = std::getenv("LICENSING_MITM_URL"); mitm && *mitm) {
    auto through_proxy = client_for(mitm, env("LICENSING_LICENSE_KEY"));
    expect_error([&] { through_proxy.validate(fingerprint); }, LICENSING_ERR_UNVERIFIED,
                 "bad_signature", "man in the middle: the answer is refused");
  }

  client.deactivate(fingerprint);
  check(true, "deactivated this machine");
  std::cout << "example.cpp: " << passes << " passed, " << failures << " failed\n";
  return failures == 0 ? 0 : 1;
} catch (const licensing::Error &e) {
  std::cerr << "unexpected " << e.status_name() << " " << e.code() << ": " << e.what() << "\n";
  return 1;
}

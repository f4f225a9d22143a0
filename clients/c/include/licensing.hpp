// licensing.hpp: a header-only C++17 wrapper of licensing.h. RAII handles (move-only), errors
// as exceptions (licensing::Error), JSON results as std::string (parse them with the JSON
// library of your choice).
//
//   licensing::Client client(licensing::Options{}
//       .base_url("https://licensing.example.com").tenant_id("acme").license_key(key)
//       .pin_key("v1", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
//       .cache_dir("/home/me/.cache/acme"));
//   std::string result = client.ensure_licensed(fingerprint);   // throws if not licensed
#ifndef LICENSING_HPP
#define LICENSING_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "licensing.h"

namespace licensing {

/// A failed call: the status, the library's message, and for API / file / signature failures
/// the code (`NO_ACTIVATION`, `LEASE_EXPIRED`, `expired`, `bad_signature`, ...).
class Error : public std::runtime_error {
 public:
  Error(licensing_status_t status, std::string message, std::string code, int http_status)
      : std::runtime_error(std::move(message)),
        status_(status),
        code_(std::move(code)),
        http_status_(http_status) {}

  licensing_status_t status() const noexcept { return status_; }
  /// The API error code or failure reason; empty when there is none.
  const std::string &code() const noexcept { return code_; }
  /// The HTTP status of an API error, else 0.
  int http_status() const noexcept { return http_status_; }
  const char *status_name() const noexcept { return licensing_status_name(status_); }

 private:
  licensing_status_t status_;
  std::string code_;
  int http_status_;
};

namespace detail {

/// Throws the thread's last error unless `status` is LICENSING_OK.
inline void check(licensing_status_t status) {
  if (status == LICENSING_OK) return;
  const char *code = licensing_last_error_code();
  throw Error(status, licensing_last_error_message(), code ? code : "",
              licensing_last_error_http_status());
}

/// Takes ownership of a string the library returned.
inline std::string take(char *text) {
  if (!text) return std::string();
  std::string copy(text);
  licensing_string_free(text);
  return copy;
}

inline const char *c_str(const std::optional<std::string> &text) {
  return text ? text->c_str() : nullptr;
}

/// Calls `f(&out)`, throws on failure, returns the JSON result.
template <typename F>
std::string json(F &&f) {
  char *out = nullptr;
  check(f(&out));
  return take(out);
}

}  // namespace detail

/// Client settings (a value type; `Client` copies what it needs).
class Options {
 public:
  Options &base_url(std::string v) { base_url_ = std::move(v); return *this; }
  Options &tenant_id(std::string v) { tenant_id_ = std::move(v); return *this; }
  Options &license_key(std::string v) { license_key_ = std::move(v); return *this; }
  Options &pin_key(std::string kid, std::string public_key) {
    keys_.emplace_back(std::move(kid), std::move(public_key));
    return *this;
  }
  Options &cache_dir(std::string v) { cache_dir_ = std::move(v); return *this; }
  Options &product(std::string v) { product_ = std::move(v); return *this; }
  Options &timeout_ms(std::uint32_t v) { timeout_ms_ = v; return *this; }
  /// A clock in milliseconds since the epoch (for tests); `user_data` is passed to it.
  Options &clock(licensing_clock_fn now, void *user_data) {
    clock_ = now;
    clock_data_ = user_data;
    return *this;
  }

 private:
  friend class Client;
  std::string base_url_, tenant_id_, license_key_;
  std::vector<std::pair<std::string, std::string>> keys_;
  std::optional<std::string> cache_dir_, product_;
  std::uint32_t timeout_ms_ = 0;
  licensing_clock_fn clock_ = nullptr;
  void *clock_data_ = nullptr;
};

/// A floating lease. Destroying it stops its heartbeats but does not return it: call
/// `give_back()` for that.
class Lease {
 public:
  /// Called on the heartbeat thread after each background heartbeat: LICENSING_OK and the
  /// activation JSON, or the failure's status and message.
  using Callback = std::function<void(licensing_status_t, const std::string &)>;

  Lease(Lease &&other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), callback_(std::move(other.callback_)) {}
  Lease &operator=(Lease &&other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
      callback_ = std::move(other.callback_);
    }
    return *this;
  }
  Lease(const Lease &) = delete;
  Lease &operator=(const Lease &) = delete;
  ~Lease() { reset(); }

  /// The activation id.
  std::string id() const { return licensing_lease_id(handle_); }
  /// The activation as last seen (JSON, with `lease_expires_at`).
  std::string json() const {
    return detail::json([&](char **out) { return licensing_lease_json(handle_, out); });
  }
  /// One heartbeat now; throws Error with code `LEASE_EXPIRED` once the lease has lapsed.
  std::string heartbeat() {
    return detail::json([&](char **out) { return licensing_lease_heartbeat(handle_, out); });
  }
  /// Heartbeats on a background thread every `interval_seconds` (0: a third of the lease).
  void start_heartbeat(std::uint32_t interval_seconds, Callback callback = nullptr) {
    stop_heartbeat();
    callback_ = callback ? std::make_unique<Callback>(std::move(callback)) : nullptr;
    detail::check(licensing_lease_start_heartbeat(handle_, interval_seconds,
                                                  callback_ ? &Lease::trampoline : nullptr,
                                                  callback_.get()));
  }
  void stop_heartbeat() noexcept { licensing_lease_stop_heartbeat(handle_); }
  /// Stops the heartbeats and returns the lease (the seat is free at once).
  std::string give_back() {
    return detail::json([&](char **out) { return licensing_lease_return(handle_, out); });
  }

 private:
  friend class Client;
  explicit Lease(licensing_lease_t *handle) : handle_(handle) {}

  void reset() noexcept {
    // Frees the handle first: that stops and joins the heartbeat thread before the callback
    // it calls is destroyed.
    licensing_lease_free(handle_);
    handle_ = nullptr;
    callback_.reset();
  }

  static void trampoline(licensing_status_t status, const char *text, void *user_data) {
    try {
      (*static_cast<Callback *>(user_data))(status, text ? text : "");
    } catch (...) {
      // An exception must not unwind into the library's thread.
    }
  }

  licensing_lease_t *handle_;
  std::unique_ptr<Callback> callback_;
};

/// A client for one license of one tenant (thread-safe). Every method blocks, returns the JSON
/// result, and throws Error on failure.
class Client {
 public:
  explicit Client(const Options &o) {
    struct OptionsHandle {
      licensing_options_t *p = licensing_options_new();
      ~OptionsHandle() { licensing_options_free(p); }
    } options;
    if (!options.p) throw std::bad_alloc();
    using detail::check;
    check(licensing_options_set_base_url(options.p, o.base_url_.c_str()));
    check(licensing_options_set_tenant_id(options.p, o.tenant_id_.c_str()));
    check(licensing_options_set_license_key(options.p, o.license_key_.c_str()));
    for (const auto &key : o.keys_)
      check(licensing_options_pin_key(options.p, key.first.c_str(), key.second.c_str()));
    check(licensing_options_set_cache_dir(options.p, detail::c_str(o.cache_dir_)));
    check(licensing_options_set_product(options.p, detail::c_str(o.product_)));
    check(licensing_options_set_timeout_ms(options.p, o.timeout_ms_));
    check(licensing_options_set_clock(options.p, o.clock_, o.clock_data_));
    check(licensing_client_new(options.p, &handle_));
  }
  Client(Client &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Client &operator=(Client &&other) noexcept {
    if (this != &other) {
      licensing_client_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;
  ~Client() { licensing_client_free(handle_); }

  /// The recommended use: licensed from a fresh cached file (0 calls), else a new checkout
  /// (activating when needed), else offline from the cache when the service is unreachable.
  std::string ensure_licensed(const std::string &fingerprint,
                              const std::optional<std::string> &name = std::nullopt) const {
    return call([&](char **out) {
      return licensing_ensure_licensed(handle_, fingerprint.c_str(), detail::c_str(name), out);
    });
  }
  std::string validate(const std::optional<std::string> &fingerprint = std::nullopt) const {
    return call([&](char **out) {
      return licensing_validate(handle_, detail::c_str(fingerprint), out);
    });
  }
  std::string activate(const std::string &fingerprint,
                       const std::optional<std::string> &name = std::nullopt) const {
    return call([&](char **out) {
      return licensing_activate(handle_, fingerprint.c_str(), detail::c_str(name), out);
    });
  }
  std::string deactivate(const std::string &fingerprint) const {
    return call([&](char **out) { return licensing_deactivate(handle_, fingerprint.c_str(), out); });
  }
  std::string heartbeat(const std::string &activation_id) const {
    return call([&](char **out) { return licensing_heartbeat(handle_, activation_id.c_str(), out); });
  }
  /// A bound offline file (ttl 0: the service's default), verified and cached.
  std::string checkout_file(const std::string &fingerprint, std::uint32_t ttl_seconds = 0) const {
    return call([&](char **out) {
      return licensing_checkout_file(handle_, fingerprint.c_str(), ttl_seconds, out);
    });
  }
  /// The cached file, verified now with no network.
  std::string offline_license(const std::optional<std::string> &fingerprint = std::nullopt) const {
    return call([&](char **out) {
      return licensing_offline_license(handle_, detail::c_str(fingerprint), out);
    });
  }
  std::string verify_file(const std::string &certificate,
                          const std::optional<std::string> &fingerprint = std::nullopt) const {
    return call([&](char **out) {
      return licensing_verify_file(handle_, certificate.c_str(), detail::c_str(fingerprint), out);
    });
  }
  std::string record_usage(const std::string &metric, std::uint64_t quantity,
                           const std::optional<std::string> &idempotency_key = std::nullopt) const {
    return call([&](char **out) {
      return licensing_record_usage(handle_, metric.c_str(), quantity,
                                    detail::c_str(idempotency_key), out);
    });
  }
  /// Checks out a floating lease; Error with status LICENSING_ERR_LICENSE_UNAVAILABLE when
  /// every seat is taken.
  Lease checkout_lease(const std::string &fingerprint,
                       const std::optional<std::string> &name = std::nullopt) const {
    licensing_lease_t *lease = nullptr;
    detail::check(
        licensing_lease_checkout(handle_, fingerprint.c_str(), detail::c_str(name), &lease));
    return Lease(lease);
  }

  /// Where the offline file is cached (empty without a cache directory).
  std::string cache_path() const {
    char *out = nullptr;
    detail::check(licensing_cache_path(handle_, &out));
    return detail::take(out);
  }

  licensing_client_t *handle() const noexcept { return handle_; }

 private:
  template <typename F>
  std::string call(F &&f) const {
    return detail::json(std::forward<F>(f));
  }

  licensing_client_t *handle_ = nullptr;
};

/// Pinned keys, to verify license files without a client.
class Keys {
 public:
  Keys() : handle_(licensing_keys_new()) {
    if (!handle_) throw std::bad_alloc();
  }
  Keys(const Keys &) = delete;
  Keys &operator=(const Keys &) = delete;
  ~Keys() { licensing_keys_free(handle_); }
  Keys &pin(const std::string &kid, const std::string &public_key) {
    detail::check(licensing_keys_pin(handle_, kid.c_str(), public_key.c_str()));
    return *this;
  }
  /// Verifies a license file offline (now: RFC 3339, or the system clock).
  std::string verify_license_file(const std::string &certificate, const std::string &tenant,
                                  const std::optional<std::string> &fingerprint = std::nullopt,
                                  const std::optional<std::string> &now = std::nullopt) const {
    return detail::json([&](char **out) {
      return licensing_verify_license_file(handle_, certificate.c_str(), tenant.c_str(),
                                           detail::c_str(fingerprint), detail::c_str(now), out);
    });
  }

 private:
  licensing_keys_t *handle_;
};

}  // namespace licensing

#endif  // LICENSING_HPP

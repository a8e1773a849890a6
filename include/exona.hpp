// exona.hpp: a header-only C++17 wrapper of libexona (exona.h).
//
// RAII, move-only handles; failures as exceptions (exona::error) carrying the code, the
// request id and the scan id; std::string_view accessors whose views live as long as the
// result they came from.
//
//   exona::client client;                       // EXONA_API_KEY, EXONA_BASE_URL
//   exona::options opts;
//   opts.max_age_days(30).timeout(std::chrono::minutes(5));
//   exona::result r = client.scan_and_wait("Acme AI Ltd", "https://acme.ai", &opts);
//   std::cout << r.get_string("/result/risk_assessment/overall_risk_level").value_or("-");
//
// Also: exona::client_options (timeouts, proxy, CA bundle, poll mode, expected duration),
// options::on_progress (a callback before every wait), exona::cancel_token, exona::batch.
#ifndef EXONA_HPP
#define EXONA_HPP

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "exona.h"

namespace exona {

inline std::string_view view(const char *s) { return s ? std::string_view(s) : std::string_view(); }

class error;

namespace detail {
/// `s` for C, or exona::error (EXONA_ERR_INVALID_ARGUMENT) naming `what` when it holds a NUL
/// character: a C string ends there, so "https://a.example\0.evil" would scan
/// https://a.example. Nothing is sent for a refused string.
inline const char *c_str(const std::string &s, const char *what);
}  // namespace detail

/// A failed call: what() is the library's message; the rest is what support asks for.
class error : public std::runtime_error {
public:
    error(exona_code code, const std::string &message, std::string request_id = {}, std::string scan_id = {},
          std::string api_code = {}, std::uint16_t http_status = 0)
        : std::runtime_error(std::string(exona_code_name(code)) + ": " + message), code_(code),
          request_id_(std::move(request_id)), scan_id_(std::move(scan_id)), api_code_(std::move(api_code)),
          http_status_(http_status) {}

    exona_code code() const noexcept { return code_; }
    const std::string &request_id() const noexcept { return request_id_; }
    /// Set whenever a scan exists: resume it with client::wait.
    const std::string &scan_id() const noexcept { return scan_id_; }
    const std::string &api_code() const noexcept { return api_code_; }
    std::uint16_t http_status() const noexcept { return http_status_; }

private:
    exona_code code_;
    std::string request_id_, scan_id_, api_code_;
    std::uint16_t http_status_;
};

inline const char *detail::c_str(const std::string &s, const char *what) {
    std::string::size_type at = s.find('\0');
    if (at != std::string::npos) {
        throw error(EXONA_ERR_INVALID_ARGUMENT,
                    std::string(what) + " contains a NUL character (at index " + std::to_string(at) +
                        "); C strings cannot carry one, and cutting the string there would name something else, "
                        "so nothing was sent");
    }
    return s.c_str();
}

/// The outcome of a scan call (success or failure). Move-only; frees itself.
class result {
public:
    explicit result(exona_result *r) noexcept : r_(r) {}
    result(result &&other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
    result &operator=(result &&other) noexcept {
        std::swap(r_, other.r_);
        return *this;
    }
    result(const result &) = delete;
    result &operator=(const result &) = delete;
    ~result() { exona_result_free(r_); }

    exona_code code() const noexcept { return exona_result_code(r_); }
    bool ok() const noexcept { return code() == EXONA_OK; }
    std::string_view message() const noexcept { return view(exona_result_message(r_)); }
    std::string_view scan_id() const noexcept { return view(exona_result_scan_id(r_)); }
    std::string_view json() const noexcept { return view(exona_result_json(r_)); }
    std::string_view request_id() const noexcept { return view(exona_result_request_id(r_)); }
    std::string_view error_code() const noexcept { return view(exona_result_error_code(r_)); }
    std::string_view hint() const noexcept { return view(exona_result_hint(r_)); }
    std::string_view param() const noexcept { return view(exona_result_param(r_)); }
    std::uint16_t http_status() const noexcept { return exona_result_http_status(r_); }
    bool cached() const noexcept { return exona_result_cached(r_); }
    /// Answered by the local state store, with no request.
    bool from_store() const noexcept { return exona_result_from_store(r_); }
    std::chrono::milliseconds retry_after() const noexcept {
        return std::chrono::milliseconds(exona_result_retry_after_ms(r_));
    }

    /// A string in the scan object by JSON pointer ("/result/risk_assessment/overall_risk_level").
    std::optional<std::string_view> get_string(const char *json_pointer) const noexcept {
        const char *s = exona_result_get_string(r_, json_pointer);
        if (!s) return std::nullopt;
        return std::string_view(s);
    }
    /// An integer in the scan object by JSON pointer.
    std::optional<std::int64_t> get_int(const char *json_pointer) const noexcept {
        std::int64_t v = 0;
        if (exona_result_get_int(r_, json_pointer, &v) != EXONA_OK) return std::nullopt;
        return v;
    }

    /// Throws exona::error when the call failed.
    const result &throw_if_error() const {
        if (!ok()) {
            throw error(code(), std::string(message()), std::string(request_id()), std::string(scan_id()),
                        std::string(error_code()), http_status());
        }
        return *this;
    }

    const exona_result *get() const noexcept { return r_; }

private:
    exona_result *r_;
};

/// A cancellation token: cancel() from any thread stops every wait using it.
class cancel_token {
public:
    cancel_token() : t_(exona_cancel_new()) {
        if (!t_) throw std::bad_alloc();
    }
    cancel_token(cancel_token &&other) noexcept : t_(std::exchange(other.t_, nullptr)) {}
    cancel_token &operator=(cancel_token &&other) noexcept {
        std::swap(t_, other.t_);
        return *this;
    }
    cancel_token(const cancel_token &) = delete;
    cancel_token &operator=(const cancel_token &) = delete;
    ~cancel_token() { exona_cancel_free(t_); }

    void cancel() const noexcept { exona_cancel(t_); }
    bool cancelled() const noexcept { return exona_cancel_is_cancelled(t_); }
    const exona_cancel_token *get() const noexcept { return t_; }

private:
    exona_cancel_token *t_;
};

/// Options of one scan call; setters throw exona::error for values the API would refuse.
class options {
public:
    options() : o_(exona_scan_options_new()) {
        if (!o_) throw std::bad_alloc();
    }
    options(options &&other) noexcept : o_(std::exchange(other.o_, nullptr)) {}
    options &operator=(options &&other) noexcept {
        std::swap(o_, other.o_);
        return *this;
    }
    options(const options &) = delete;
    options &operator=(const options &) = delete;
    ~options() { exona_scan_options_free(o_); }

    options &max_age_days(std::uint32_t days) { return check(exona_scan_options_set_max_age_days(o_, days), "max_age_days must be 0 to 365"); }
    options &force_refresh(bool on) { return check(exona_scan_options_set_force_refresh(o_, on), "force_refresh"); }
    options &include_field_citations(bool on) {
        return check(exona_scan_options_set_include_field_citations(o_, on), "include_field_citations");
    }
    options &question(const std::string &q, const std::string &a) {
        return check(exona_scan_options_add_question(o_, detail::c_str(q, "question"), detail::c_str(a, "answer")),
                     "questionnaire: at most 50 items and 5,000 characters per answer");
    }
    options &timeout(std::chrono::milliseconds t) {
        return check(exona_scan_options_set_timeout_ms(o_, static_cast<std::uint64_t>(t.count())), "timeout must be positive");
    }
    options &no_deadline() { return check(exona_scan_options_set_timeout_ms(o_, UINT64_MAX), "timeout"); }
    options &poll_mode(exona_poll_mode mode) { return check(exona_scan_options_set_poll_mode(o_, mode), "poll mode"); }
    /// Fixes the polling's thrift, 0 (like latency) to 1000 (like frugal), whatever the key's
    /// window; -1 gives the choice back to the poll mode (exona_scan_options_set_thrift_permille).
    options &thrift_permille(int permille) {
        return check(exona_scan_options_set_thrift_permille(o_, permille), "thrift_permille must be 0 to 1000, or -1");
    }
    options &cancel(const cancel_token &token) { return check(exona_scan_options_set_cancel(o_, token.get()), "cancel"); }

    /// Called before every wait of scan_and_wait and wait, on the calling thread; returning
    /// false cancels the call. An exception thrown by it cancels the call too (it never
    /// crosses the C library). The options own the callback: keep them alive during the call.
    using progress_fn = std::function<bool(const exona_progress &)>;
    options &on_progress(progress_fn f) {
        progress_ = std::make_unique<progress_fn>(std::move(f));
        return check(exona_scan_options_set_progress(o_, &options::trampoline, progress_.get()), "progress");
    }

    const exona_scan_options *get() const noexcept { return o_; }

private:
    static int trampoline(const exona_progress *p, void *user) noexcept {
        try {
            return (*static_cast<progress_fn *>(user))(*p) ? 0 : 1;
        } catch (...) {
            return 1;
        }
    }
    options &check(exona_code rc, const char *what) {
        if (rc != EXONA_OK) throw error(rc, what);
        return *this;
    }
    exona_scan_options *o_;
    // On the heap, so the pointer the C library holds survives a move of the options.
    std::unique_ptr<progress_fn> progress_;
};

/// A client's settings beyond its key and URL; setters throw exona::error for refused values.
class client_options {
public:
    client_options() : o_(exona_client_options_new()) {
        if (!o_) throw std::bad_alloc();
    }
    client_options(client_options &&other) noexcept : o_(std::exchange(other.o_, nullptr)) {}
    client_options &operator=(client_options &&other) noexcept {
        std::swap(o_, other.o_);
        return *this;
    }
    client_options(const client_options &) = delete;
    client_options &operator=(const client_options &) = delete;
    ~client_options() { exona_client_options_free(o_); }

    client_options &connect_timeout(std::chrono::milliseconds t) {
        return check(exona_client_options_set_connect_timeout_ms(o_, ms(t)), "connect timeout must be positive");
    }
    client_options &attempt_timeout(std::chrono::milliseconds t) {
        return check(exona_client_options_set_attempt_timeout_ms(o_, ms(t)), "attempt timeout must be positive");
    }
    client_options &user_agent_suffix(const std::string &s) {
        return check(exona_client_options_set_user_agent_suffix(o_, detail::c_str(s, "user agent suffix")), "user agent suffix: printable ASCII");
    }
    /// A proxy URL for every request; "" for none at all.
    client_options &proxy(const std::string &url) { return check(exona_client_options_set_proxy(o_, detail::c_str(url, "proxy")), "proxy URL"); }
    client_options &ca_bundle_file(const std::string &path) {
        return check(exona_client_options_set_ca_bundle_file(o_, detail::c_str(path, "CA bundle")), "CA bundle: a readable PEM file");
    }
    client_options &poll_mode(exona_poll_mode mode) { return check(exona_client_options_set_poll_mode(o_, mode), "poll mode"); }
    /// The state store's directory, shared by the processes of the host; "off" for none.
    client_options &state_dir(const std::string &path) {
        return check(exona_client_options_set_state_dir(o_, detail::c_str(path, "state dir")), "state dir");
    }
    /// The fleet store: a postgresql:// URL shared by the hosts of a fleet, in place of the
    /// state directory's file; "off" for none. Its password is never shown.
    client_options &state_url(const std::string &url) {
        return check(exona_client_options_set_state_url(o_, detail::c_str(url, "state URL")), "state URL: a postgresql:// URL");
    }
    client_options &expected_duration(std::chrono::milliseconds min, std::chrono::milliseconds max) {
        return check(exona_client_options_set_expected_duration_ms(o_, ms(min), ms(max)), "expected duration: 0 < min <= max");
    }

    const exona_client_options *get() const noexcept { return o_; }

private:
    static std::uint64_t ms(std::chrono::milliseconds t) { return t.count() < 0 ? 0 : static_cast<std::uint64_t>(t.count()); }
    client_options &check(exona_code rc, const char *what) {
        if (rc != EXONA_OK) throw error(rc, what);
        return *this;
    }
    exona_client_options *o_;
};

/// A client of the Exona API; thread-safe. Move-only.
class client {
public:
    /// nullptr: EXONA_API_KEY / EXONA_BASE_URL (else the production URL).
    explicit client(const char *api_key = nullptr, const char *base_url = nullptr) {
        exona_result *why = nullptr;
        if (exona_client_create(api_key, base_url, &c_, &why) != EXONA_OK) result(why).throw_if_error();
    }
    /// With settings; nullptr key and URL as above.
    explicit client(const client_options &settings, const char *api_key = nullptr, const char *base_url = nullptr) {
        exona_result *why = nullptr;
        if (exona_client_create_with_options(api_key, base_url, settings.get(), &c_, &why) != EXONA_OK) {
            result(why).throw_if_error();
        }
    }
    client(client &&other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
    client &operator=(client &&other) noexcept {
        std::swap(c_, other.c_);
        return *this;
    }
    client(const client &) = delete;
    client &operator=(const client &) = delete;
    ~client() { exona_client_free(c_); }

    /// Creates a scan and waits for it; throws exona::error on failure.
    result scan_and_wait(const std::string &name, const std::string &website, const options *opts = nullptr) const {
        result r = try_scan_and_wait(name, website, opts);
        r.throw_if_error();
        return r;
    }
    /// The same, returning the result on failure too (no exception, but for a name or website
    /// holding a NUL character: exona::error, before anything is sent).
    result try_scan_and_wait(const std::string &name, const std::string &website, const options *opts = nullptr) const {
        exona_result *r = nullptr;
        exona_scan_and_wait(c_, detail::c_str(name, "company name"), detail::c_str(website, "company website"), opts ? opts->get() : nullptr, &r);
        return result(r);
    }
    result create(const std::string &name, const std::string &website, const options *opts = nullptr) const {
        exona_result *r = nullptr;
        exona_scan_create(c_, detail::c_str(name, "company name"), detail::c_str(website, "company website"), opts ? opts->get() : nullptr, &r);
        return checked(r);
    }
    result get(const std::string &scan_id) const {
        exona_result *r = nullptr;
        exona_scan_get(c_, detail::c_str(scan_id, "scan id"), &r);
        return checked(r);
    }
    /// Waits for an existing scan (no new POST); throws exona::error on failure.
    result wait(const std::string &scan_id, const options *opts = nullptr) const {
        exona_result *r = nullptr;
        exona_scan_wait(c_, detail::c_str(scan_id, "scan id"), opts ? opts->get() : nullptr, &r);
        return checked(r);
    }

    exona_client *get() const noexcept { return c_; }

private:
    static result checked(exona_result *r) {
        result res(r);
        res.throw_if_error();
        return res;
    }
    exona_client *c_ = nullptr;
};

/// Many scans on one client, results in finishing order (exona_batch). Move-only; freeing it
/// cancels what still runs. Not for concurrent use from several threads.
class batch {
public:
    explicit batch(const client &c) : b_(exona_batch_new(c.get())) {
        if (!b_) throw error(EXONA_ERR_INVALID_ARGUMENT, "batch: the client is not valid");
    }
    batch(batch &&other) noexcept : b_(std::exchange(other.b_, nullptr)) {}
    batch &operator=(batch &&other) noexcept {
        std::swap(b_, other.b_);
        return *this;
    }
    batch(const batch &) = delete;
    batch &operator=(const batch &) = delete;
    ~batch() { exona_batch_free(b_); }

    /// Journals the rows in the SQLite file at `path`, before the first add(): a batch made
    /// again on the same journal with the same rows in the same order resumes (finished rows
    /// cost no request, no company is created twice). With `reconcile`, rows a crash left in
    /// their create are created again with max_age_days instead of ending
    /// EXONA_ERR_AMBIGUOUS_CREATE. Throws exona::error when the journal cannot be used.
    void set_journal(const std::string &path, bool reconcile = false) {
        exona_code rc = exona_batch_set_journal(b_, detail::c_str(path, "batch journal"));
        if (rc != EXONA_OK) throw error(rc, "batch journal: " + path + " cannot be used (EXONA_LOG=warn says why)");
        exona_batch_set_reconcile(b_, reconcile ? 1 : 0);
    }

    /// Where the batch stands: counts, requests used, budget left, eta_seconds (-1: unknown).
    exona_batch_status status() const noexcept {
        exona_batch_status s{};
        exona_batch_get_status(b_, &s);
        return s;
    }

    /// Adds a scan; returns its index (results carry it: result_index). Throws exona::error
    /// for a request refused before sending.
    std::size_t add(const std::string &name, const std::string &website, const options *opts = nullptr) {
        std::size_t index = 0;
        exona_code rc = exona_batch_add(b_, detail::c_str(name, "company name"), detail::c_str(website, "company website"), opts ? opts->get() : nullptr, &index);
        if (rc != EXONA_OK) throw error(rc, "batch add: " + name + " (" + website + ")");
        return index;
    }

    /// The next finished scan (success or failure: check result::ok()), waiting up to
    /// `limit`; std::nullopt when none finished in time or when every result was delivered
    /// (then finished() is true).
    std::optional<result> next(std::optional<std::chrono::milliseconds> limit = std::nullopt) {
        exona_result *r = nullptr;
        std::uint64_t ms = limit ? static_cast<std::uint64_t>(std::max<std::int64_t>(0, limit->count())) : UINT64_MAX;
        exona_code rc = exona_batch_next(b_, ms, &r);
        if (rc == EXONA_OK) return result(r);
        finished_ = rc == EXONA_ERR_NOT_FOUND;
        return std::nullopt;
    }
    bool finished() const noexcept { return finished_; }

    struct counts_t {
        std::size_t queued = 0, in_flight = 0, done = 0;
    };
    counts_t counts() const noexcept {
        counts_t c;
        exona_batch_counts(b_, &c.queued, &c.in_flight, &c.done);
        return c;
    }
    void cancel(std::size_t index) {
        exona_code rc = exona_batch_cancel(b_, index);
        if (rc != EXONA_OK) throw error(rc, "batch cancel: no request " + std::to_string(index));
    }
    void cancel_all() noexcept { exona_batch_cancel_all(b_); }

    /// The index of a result that came from a batch.
    static std::size_t result_index(const result &r) noexcept { return exona_result_index(r.get()); }

private:
    exona_batch *b_;
    bool finished_ = false;
};

}  // namespace exona

#endif  // EXONA_HPP

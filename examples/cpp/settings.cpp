// settings.cpp: a client with settings, a scan followed through its progress callback and
// cancelled by a cancel token from another thread once it exists, then resumed by id at a
// fixed thrift.
//
//   EXONA_API_KEY=... EXONA_BASE_URL=... ./settings COMPANY_NAME COMPANY_WEBSITE
//
// Exit status: 0 when the resumed wait completed, 1 otherwise, 2 for usage errors.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <thread>

#include "exona.hpp"

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " COMPANY_NAME COMPANY_WEBSITE\n";
        return 2;
    }
    try {
        exona::client_options settings;
        settings.attempt_timeout(std::chrono::seconds(10)).user_agent_suffix("settings-example/1").proxy("");
        exona::client client(settings);

        exona::cancel_token token;
        std::mutex m;
        std::condition_variable created;
        bool scan_exists = false;
        std::atomic<int> events{0};

        exona::options opts;
        opts.cancel(token).on_progress([&](const exona_progress &p) {
            events++;
            std::cout << "progress: " << (p.scan_id ? p.scan_id : "(not created)") << ", next request in "
                      << p.wait_ms << " ms, " << p.requests_used << " request(s) used\n";
            if (p.scan_id) {
                std::lock_guard<std::mutex> lock(m);
                scan_exists = true;
                created.notify_one();
            }
            return true;
        });
        // A watchdog: once the scan exists, give it 200 ms, then cancel from this thread.
        std::thread watchdog([&] {
            std::unique_lock<std::mutex> lock(m);
            created.wait_for(lock, std::chrono::seconds(60), [&] { return scan_exists; });
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            token.cancel();
        });
        exona::result first = client.try_scan_and_wait(argv[1], argv[2], &opts);
        watchdog.join();
        std::cout << "first wait: " << exona_code_name(first.code()) << " after " << events << " event(s)\n";
        if (first.code() != EXONA_ERR_CANCELLED || first.scan_id().empty()) {
            std::cerr << "expected a cancelled wait with a scan id: " << first.message() << "\n";
            return 1;
        }
        std::string id(first.scan_id());
        // The result is not urgent now: resume at a fixed thrift of 1000 (frugal-like polling,
        // whatever the key's window).
        exona::options resume;
        std::uint32_t planned_at = 0;
        resume.timeout(std::chrono::minutes(5)).thrift_permille(1000).on_progress([&](const exona_progress &p) {
            planned_at = p.thrift_permille;
            return true;
        });
        exona::result done = client.wait(id, &resume);
        std::cout << "resumed " << id << " (polls planned at thrift " << planned_at << "/1000): overall risk "
                  << done.get_string("/result/risk_assessment/overall_risk_level").value_or("-") << "\n";
        return 0;
    } catch (const exona::error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

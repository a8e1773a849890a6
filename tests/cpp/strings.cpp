// strings.cpp: every string the C++ wrapper hands to C is refused when it holds a NUL
// character (DESIGN.md 9.2): exona::error with EXONA_ERR_INVALID_ARGUMENT, naming which, and
// nothing is sent (the test counts the simulator's requests).
//
//   EXONA_API_KEY=... EXONA_BASE_URL=... ./strings
//
// Prints one line per case; exit status 0 when every case was refused as it should be.
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "exona.hpp"

int main() {
    using namespace std::string_literals;
    exona::client client;
    exona::batch batch(client);
    const std::vector<std::pair<const char *, std::function<void()>>> cases = {
        {"company name", [&] { client.scan_and_wait("Acme\0Evil"s, "https://acme.ai"); }},
        {"company website", [&] { client.try_scan_and_wait("Acme", "https://nul2.example\0.evil"s); }},
        {"company website", [&] { client.create("Acme", "https://nul3.example\0.evil"s); }},
        {"scan id", [&] { client.get("scn_test_1\0"s); }},
        {"scan id", [&] { client.wait("scn_test_1\0x"s); }},
        {"question", [&] { exona::options().question("Uses AI?\0"s, "yes"); }},
        {"state dir", [&] { exona::client_options().state_dir("/tmp/x\0y"s); }},
        {"company website", [&] { batch.add("Evil", "https://nul4.example\0.evil"s); }},
    };
    int refused = 0;
    for (const auto &c : cases) {
        try {
            c.second();
            std::printf("%s: NOT refused\n", c.first);
        } catch (const exona::error &e) {
            std::string what = e.what();
            bool ok = e.code() == EXONA_ERR_INVALID_ARGUMENT && what.find(c.first) != std::string::npos &&
                      what.find("NUL") != std::string::npos;
            std::printf("%s: %s (%s)\n", c.first, ok ? "refused" : "refused WRONGLY", e.what());
            refused += ok;
        }
    }
    std::printf("%d of %zu refused\n", refused, cases.size());
    return refused == static_cast<int>(cases.size()) ? 0 : 1;
}

// scan.cpp: the C++ wrapper (exona.hpp): scan one company, print its assessment, and on
// failure print the code, message, request id and scan id.
//   EXONA_API_KEY=... EXONA_BASE_URL=... ./scan_cpp "Acme AI Ltd" https://acme.ai
#include <chrono>
#include <iostream>

#include "exona.hpp"

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " COMPANY_NAME COMPANY_WEBSITE\n";
        return 2;
    }
    try {
        exona::client client;  // EXONA_API_KEY, EXONA_BASE_URL
        exona::options opts;
        opts.max_age_days(30).timeout(std::chrono::minutes(5));
        exona::result r = client.scan_and_wait(argv[1], argv[2], &opts);
        std::cout << "scan:          " << r.scan_id() << (r.cached() ? " (cached)" : "") << "\n";
        std::cout << "overall risk:  " << r.get_string("/result/risk_assessment/overall_risk_level").value_or("-") << "\n";
        for (const char *dim : {"ai_intensity", "autonomy", "domain_risk", "blast_radius", "data_content_ip_risk",
                                "control_governance"}) {
            std::string base = std::string("/result/risk_assessment/") + dim;
            std::cout << "  " << dim << ": " << r.get_int((base + "/score").c_str()).value_or(-1) << "  "
                      << r.get_string((base + "/label").c_str()).value_or("-") << "\n";
        }
        return 0;
    } catch (const exona::error &e) {
        std::cerr << "error: " << e.what() << "\n  request id: " << (e.request_id().empty() ? "-" : e.request_id())
                  << "\n  scan id:    " << (e.scan_id().empty() ? "-" : e.scan_id()) << "\n";
        return 1;
    }
}

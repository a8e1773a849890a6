// batch.cpp: scan several companies at once with exona::batch and print each as it ends.
//
//   EXONA_API_KEY=... EXONA_BASE_URL=... ./batch WEBSITE...
//
// Exit status: 0 when every scan completed, 1 when some did not, 2 for usage errors.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "exona.hpp"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " WEBSITE...\n";
        return 2;
    }
    try {
        exona::client client;
        exona::batch batch(client);
        std::vector<std::string> websites(argv + 1, argv + argc);
        for (const std::string &w : websites) batch.add("Company at " + w, w);
        int completed = 0, failed = 0;
        while (!batch.finished()) {
            std::optional<exona::result> r = batch.next(std::chrono::seconds(5));
            if (!r) {
                exona_batch_status s = batch.status();
                std::cerr << "progress: " << s.queued << " queued, " << s.in_flight << " in flight, "
                          << s.completed + s.failed << " done, " << s.requests << " requests, " << s.budget_left
                          << " left\n";
                continue;
            }
            std::size_t i = exona::batch::result_index(*r);
            const std::string &site = i < websites.size() ? websites[i] : "?";
            if (r->ok()) {
                completed++;
                std::cout << site << ": " << r->get_string("/result/risk_assessment/overall_risk_level").value_or("-")
                          << " (" << r->scan_id() << ")\n";
            } else {
                failed++;
                std::cout << site << ": " << exona_code_name(r->code()) << " " << r->scan_id() << " " << r->message() << "\n";
            }
        }
        std::cout << completed << " completed, " << failed << " not\n";
        std::cerr << batch.status().requests << " requests\n";
        return failed == 0 ? 0 : 1;
    } catch (const exona::error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

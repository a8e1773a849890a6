/*
 * batch.c: screen a portfolio. Reads a CSV of company_name,company_website (a header line,
 * and quoted fields with commas or doubled quotes, are understood), scans every company with
 * one exona_batch, prints a row per company as its result arrives (flushed, so a pipe sees it
 * at once; a row that did not complete shows its scan id when one exists, to resume it), where
 * the batch stands on stderr every few seconds (counts, requests, budget, an estimate of the
 * end), then a summary. With a journal file, a run stopped halfway (Ctrl-C, a crash) and run
 * again resumes: finished rows cost no request and no company is created twice.
 *
 *   EXONA_API_KEY=... EXONA_BASE_URL=... ./batch portfolio.csv [journal.sqlite3]
 *
 * Exit status: 0 when every scan completed, 1 when some did not, 2 for input errors (which
 * name the line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exona.h"
#include "csv_line.h"

#define MAX_ROWS 100000

/* One line on stderr: how many rows wait for budget, run, and have ended; the requests spent,
 * the budget left and when the batch should end. */
static void report_status(const exona_batch *batch) {
    exona_batch_status s;
    if (exona_batch_get_status(batch, &s) == EXONA_OK) {
        fprintf(stderr, "progress: %zu queued, %zu in flight, %zu done (%zu completed, %zu not), %llu requests, %u left",
                s.queued, s.in_flight, s.completed + s.failed, s.completed, s.failed,
                (unsigned long long)s.requests, (unsigned)s.budget_left);
        if (s.eta_seconds >= 0) fprintf(stderr, ", about %.0f s to go", s.eta_seconds);
        fputc('\n', stderr);
    }
}

int main(int argc, char **argv) {
    static struct row rows[MAX_ROWS];
    char line[2 * MAX_FIELD + 16];
    exona_client *client = NULL;
    exona_batch *batch = NULL;
    exona_result *result = NULL;
    FILE *f;
    size_t n = 0, lineno = 0, completed = 0, failed = 0, i;
    size_t levels[5] = {0, 0, 0, 0, 0};
    const char *level_names[4] = {"Low", "Medium", "High", "Very High"};

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s PORTFOLIO.csv [JOURNAL]\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "r");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\n", argv[1]);
        return 2;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        const char *why;
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr, "%s:%zu: the line is too long\n", argv[1], lineno);
            fclose(f);
            return 2;
        }
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0') continue;
        if (n == MAX_ROWS) {
            fprintf(stderr, "%s:%zu: more than %d companies\n", argv[1], lineno, MAX_ROWS);
            fclose(f);
            return 2;
        }
        why = parse_line(line, &rows[n]);
        if (why != NULL) {
            fprintf(stderr, "%s:%zu: %s\n", argv[1], lineno, why);
            fclose(f);
            return 2;
        }
        if (lineno == 1 && strcmp(rows[n].name, "company_name") == 0) continue; /* the header */
        n++;
    }
    fclose(f);

    if (exona_client_create(NULL, NULL, &client, &result) != EXONA_OK) {
        fprintf(stderr, "error: %s\n", exona_result_message(result));
        exona_result_free(result);
        return 1;
    }
    batch = exona_batch_new(client);
    if (argc == 3 && exona_batch_set_journal(batch, argv[2]) != EXONA_OK) {
        fprintf(stderr, "error: %s cannot be used as a journal (EXONA_LOG=warn says why)\n", argv[2]);
        exona_batch_free(batch);
        exona_client_free(client);
        return 2;
    }
    for (i = 0; i < n; i++) {
        if (exona_batch_add(batch, rows[i].name, rows[i].website, NULL, NULL) != EXONA_OK) {
            fprintf(stderr, "error: cannot add %s\n", rows[i].name);
        }
    }

    printf("%-32s  %-10s  %s\n", "company", "level", "scan id or error");
    fflush(stdout);
    for (;;) {
        /* Wait up to 5 s for the next row; in between, say on stderr how the batch stands. */
        exona_code rc = exona_batch_next(batch, 5000, &result);
        size_t index;
        const char *company;
        if (rc == EXONA_ERR_TIMEOUT) {
            report_status(batch);
            continue;
        }
        if (rc != EXONA_OK) break; /* EXONA_ERR_NOT_FOUND: every row has ended */
        index = exona_result_index(result);
        company = index < n ? rows[index].name : "?";
        if (exona_result_code(result) == EXONA_OK) {
            const char *level = exona_result_get_string(result, "/result/risk_assessment/overall_risk_level");
            int k;
            completed++;
            for (k = 0; k < 4 && (level == NULL || strcmp(level, level_names[k]) != 0); k++) {
            }
            levels[k]++;
            printf("%-32.32s  %-10s  %s\n", company, level ? level : "-", exona_result_scan_id(result));
        } else {
            const char *scan_id = exona_result_scan_id(result);
            failed++;
            /* A row that has a scan id can be resumed (exona_scan_wait) instead of created again. */
            printf("%-32.32s  %-10s  %s%s%s: %s\n", company, "-", exona_code_name((int)exona_result_code(result)),
                   scan_id ? " scan " : "", scan_id ? scan_id : "", exona_result_message(result));
        }
        fflush(stdout); /* each row as it ends, also when stdout is a pipe */
        exona_result_free(result);
        if ((completed + failed) % 10 == 0) report_status(batch);
    }

    printf("\n%zu companies: %zu completed, %zu not\n", n, completed, failed);
    printf("Low %zu, Medium %zu, High %zu, Very High %zu, other %zu\n", levels[0], levels[1], levels[2],
           levels[3], levels[4]);
    exona_batch_free(batch);
    exona_client_free(client);
    return failed == 0 ? 0 : 1;
}

/*
 * faults.c: the fault matrix through the C surface, for the memory checkers. One thread per
 * website given on the command line, all on one client, each exona_scan_and_wait with its own
 * deadline (WEBSITE or WEBSITE@MS; 4000 ms when not given); every result is read through
 * every accessor, then freed. The harness gives a short deadline only to the rows that must
 * end by it, and a long one to the rows that end by an event (an answer, a retry count), so
 * no outcome depends on how fast the machine is.
 * Prints "WEBSITE CODE_NAME" per scan; the harness (tests/c_examples.rs) checks every outcome
 * against the fault matrix. Exit status 0 unless a call returned a code that is not an
 * exona_code.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exona.h"

#define MAX 64

struct job {
    exona_client *client;
    exona_scan_options *options;
    char website[512];
    exona_code rc;
    size_t touched;
};

static size_t len(const char *s) { return s ? strlen(s) : 0; }

static void *run(void *arg) {
    struct job *job = arg;
    exona_result *r = NULL;
    int64_t n = 0;
    job->rc = exona_scan_and_wait(job->client, "Fault Co", job->website, job->options, &r);
    /* Touch everything the result holds, as a careful caller would. */
    job->touched = len(exona_result_message(r)) + len(exona_result_scan_id(r)) + len(exona_result_json(r)) +
                   len(exona_result_error_code(r)) + len(exona_result_hint(r)) + len(exona_result_param(r)) +
                   len(exona_result_request_id(r)) +
                   len(exona_result_get_string(r, "/result/risk_assessment/overall_risk_level")) +
                   (size_t)exona_result_http_status(r) + (size_t)exona_result_cached(r) +
                   (size_t)(exona_result_retry_after_ms(r) > 0) +
                   (size_t)(exona_result_get_int(r, "/result/enrichment/number_of_users", &n) == EXONA_OK);
    exona_result_free(r);
    return NULL;
}

/* Splits "WEBSITE@MS" into the job's website and its deadline; 0 when the argument is bad. */
static int parse_row(const char *arg, struct job *job) {
    const char *at = strrchr(arg, '@');
    size_t n = at ? (size_t)(at - arg) : strlen(arg);
    unsigned long long ms = 4000;
    char *end = NULL;

    if (n == 0 || n >= sizeof job->website) return 0;
    if (at != NULL) {
        ms = strtoull(at + 1, &end, 10);
        if (end == at + 1 || *end != '\0' || ms == 0) return 0;
    }
    memcpy(job->website, arg, n);
    job->website[n] = '\0';
    job->options = exona_scan_options_new();
    return job->options != NULL && exona_scan_options_set_timeout_ms(job->options, (uint64_t)ms) == EXONA_OK;
}

int main(int argc, char **argv) {
    static struct job jobs[MAX];
    pthread_t threads[MAX];
    exona_client *client = exona_client_new(NULL, NULL);
    int i, n = argc - 1, bad = 0, parsed = 0;

    if (client != NULL && n >= 1 && n <= MAX) {
        for (parsed = 0; parsed < n && parse_row(argv[parsed + 1], &jobs[parsed]); parsed++) {
        }
    }
    if (client == NULL || n < 1 || n > MAX || parsed < n) {
        fprintf(stderr, "usage: %s WEBSITE[@DEADLINE_MS]... (EXONA_API_KEY and EXONA_BASE_URL set)\n", argv[0]);
        for (i = 0; i <= parsed && i < MAX; i++) exona_scan_options_free(jobs[i].options);
        exona_client_free(client);
        return 2;
    }
    for (i = 0; i < n; i++) {
        jobs[i].client = client;
        pthread_create(&threads[i], NULL, run, &jobs[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        printf("%s %s\n", jobs[i].website, exona_code_name((int)jobs[i].rc));
        bad += strcmp(exona_code_name((int)jobs[i].rc), "EXONA_ERR_UNKNOWN") == 0;
        exona_scan_options_free(jobs[i].options);
    }
    exona_client_free(client);
    return bad == 0 ? 0 : 1;
}

/*
 * faults.c: the fault matrix through the C surface, for the memory checkers. One thread per
 * website given on the command line, all on one client, each exona_scan_and_wait with a 4 s
 * deadline; every result is read through every accessor, then freed.
 * Prints "WEBSITE CODE_NAME" per scan; the harness (tests/c_examples.rs) checks every outcome
 * against the fault matrix. Exit status 0 unless a call returned a code that is not an
 * exona_code.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "exona.h"

#define MAX 64

struct job {
    exona_client *client;
    const exona_scan_options *options;
    const char *website;
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

int main(int argc, char **argv) {
    static struct job jobs[MAX];
    pthread_t threads[MAX];
    exona_client *client = exona_client_new(NULL, NULL);
    exona_scan_options *options = exona_scan_options_new();
    int i, n = argc - 1, bad = 0;

    if (client == NULL || options == NULL || n < 1 || n > MAX) {
        fprintf(stderr, "usage: %s WEBSITE... (EXONA_API_KEY and EXONA_BASE_URL set)\n", argv[0]);
        exona_scan_options_free(options);
        exona_client_free(client);
        return 2;
    }
    exona_scan_options_set_timeout_ms(options, 4000);
    for (i = 0; i < n; i++) {
        jobs[i].client = client;
        jobs[i].options = options;
        jobs[i].website = argv[i + 1];
        pthread_create(&threads[i], NULL, run, &jobs[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        printf("%s %s\n", jobs[i].website, exona_code_name((int)jobs[i].rc));
        bad += strcmp(exona_code_name((int)jobs[i].rc), "EXONA_ERR_UNKNOWN") == 0;
    }
    exona_scan_options_free(options);
    exona_client_free(client);
    return bad == 0 ? 0 : 1;
}

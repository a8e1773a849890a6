/*
 * misuse.c: every exported function called as a careless or hostile program would: NULL in
 * each pointer argument, empty and invalid UTF-8 strings, out-of-range numbers, and one
 * client and one result used from several threads at once. Every call must return its
 * documented code or be a documented no-op; run under AddressSanitizer, UBSan and valgrind.
 *
 * Needs EXONA_API_KEY and EXONA_BASE_URL (a simulator) for the threaded part.
 * Prints "misuse: N checks passed" and exits 0, or names the first failed check and exits 1.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exona.h"

static int checks = 0;

#define CHECK(cond)                                                           \
    do {                                                                      \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            fprintf(stderr, "misuse: check failed at line %d: %s\n", __LINE__, #cond); \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

static const char BAD_UTF8[] = {(char)0xff, (char)0xfe, 'x', 0};
static const char *KEY = "exo_test_abcdefghijklmnopqrstuvwxyz0123456789";
static const char *LOCAL = "http://127.0.0.1:9/api/v1";

/* A call that must fail with INVALID_ARGUMENT, hand back a result naming `what`, and send nothing. */
static void expect_invalid(exona_code rc, exona_result *r, const char *what) {
    CHECK(rc == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(r != NULL);
    CHECK(exona_result_code(r) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_result_message(r) != NULL && strstr(exona_result_message(r), what) != NULL);
    CHECK(exona_result_http_status(r) == 0);
    CHECK(exona_result_scan_id(r) == NULL);
    CHECK(exona_result_json(r) == NULL);
    exona_result_free(r);
}

static void codes_and_version(void) {
    int i;
    CHECK(strcmp(exona_code_name(EXONA_OK), "EXONA_OK") == 0);
    CHECK(strcmp(exona_code_name(EXONA_ERR_INTERNAL), "EXONA_ERR_INTERNAL") == 0);
    {
        const int unknown[] = {-1, 15, 9999, INT_MIN, INT_MAX};
        for (i = 0; i < 5; i++) CHECK(strcmp(exona_code_name(unknown[i]), "EXONA_ERR_UNKNOWN") == 0);
    }
    /* "0.1.0+COMMIT": the release before the '+', the commit after it (or nothing). */
    CHECK(exona_version() != NULL &&
          strncmp(exona_version(), EXONA_VERSION_STRING, strlen(EXONA_VERSION_STRING)) == 0 &&
          (exona_version()[strlen(EXONA_VERSION_STRING)] == '\0' ||
           exona_version()[strlen(EXONA_VERSION_STRING)] == '+'));
    CHECK(EXONA_VERSION_NUMBER == EXONA_VERSION_MAJOR * 10000 + EXONA_VERSION_MINOR * 100 + EXONA_VERSION_PATCH);
}

static void clients(void) {
    exona_client *c = (exona_client *)1;
    exona_result *r = NULL;
    const char *bad_urls[] = {"", "not a url", "ftp://x/", "http://example.com/api/v1", BAD_UTF8};
    int i;

    CHECK(exona_client_new("", LOCAL) == NULL);
    CHECK(exona_client_new(BAD_UTF8, LOCAL) == NULL);
    CHECK(exona_client_new("exo_test_a\r\nX-Injected: 1", LOCAL) == NULL);
    for (i = 0; i < 5; i++) CHECK(exona_client_new(KEY, bad_urls[i]) == NULL);

    CHECK(exona_client_create(KEY, LOCAL, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_create(KEY, LOCAL, NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "client_out");
    CHECK(exona_client_create("", LOCAL, &c, &r) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "api_key");
    CHECK(exona_client_create(KEY, BAD_UTF8, &c, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "base_url");
    CHECK(exona_client_create(KEY, "http://example.com/", &c, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    exona_client_free(NULL);
}

static void client_options(void) {
    exona_client_options *o = exona_client_options_new();
    exona_client *c = NULL;
    CHECK(o != NULL);
    CHECK(exona_client_options_set_connect_timeout_ms(NULL, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_connect_timeout_ms(o, 0) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_attempt_timeout_ms(o, 0) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_user_agent_suffix(o, BAD_UTF8) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_user_agent_suffix(o, "x\r\nInjected: 1") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_user_agent_suffix(o, NULL) == EXONA_OK);
    CHECK(exona_client_options_set_proxy(o, "not a url") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_proxy(o, BAD_UTF8) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_proxy(o, "") == EXONA_OK);
    CHECK(exona_client_options_set_ca_bundle_file(o, "/nonexistent") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_ca_bundle_file(o, NULL) == EXONA_OK);
    CHECK(exona_client_options_set_poll_mode(o, 99) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_options_set_expected_duration_ms(o, 2, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_create_with_options(KEY, LOCAL, o, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_client_create_with_options(KEY, LOCAL, o, &c, NULL) == EXONA_OK && c != NULL);
    exona_client_free(c);
    exona_client_options_free(o);
    exona_client_options_free(NULL);
    CHECK(exona_set_log_callback(NULL, 0, NULL) == EXONA_OK);
}

static void options(void) {
    exona_scan_options *o = exona_scan_options_new();
    exona_cancel_token *t = exona_cancel_new();
    int i;
    CHECK(o != NULL && t != NULL);

    CHECK(exona_scan_options_set_max_age_days(NULL, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_max_age_days(o, 366) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_max_age_days(o, UINT32_MAX) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_max_age_days(o, 0) == EXONA_OK);
    CHECK(exona_scan_options_set_force_refresh(NULL, true) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_include_field_citations(NULL, true) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_timeout_ms(NULL, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_timeout_ms(o, 0) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_timeout_ms(o, UINT64_MAX) == EXONA_OK);
    CHECK(exona_scan_options_set_expected_duration_ms(NULL, 1, 2) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_expected_duration_ms(o, 2, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_expected_duration_ms(o, UINT64_MAX, UINT64_MAX) == EXONA_OK);
    CHECK(exona_scan_options_set_poll_mode(NULL, EXONA_POLL_FRUGAL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_poll_mode(o, -1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_poll_mode(o, 4) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_poll_mode(o, EXONA_POLL_ADAPTIVE) == EXONA_OK);
    CHECK(exona_scan_options_set_poll_mode(o, INT_MIN) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_max_rate_limit_wait_ms(NULL, 1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_max_rate_limit_wait_ms(o, UINT64_MAX) == EXONA_OK);
    CHECK(exona_scan_options_set_progress(NULL, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_progress(o, NULL, NULL) == EXONA_OK);
    CHECK(exona_scan_options_set_cancel(NULL, t) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_set_cancel(o, NULL) == EXONA_OK);
    CHECK(exona_scan_options_set_cancel(o, t) == EXONA_OK);

    CHECK(exona_scan_options_add_question(NULL, "q", "a") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_add_question(o, NULL, "a") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_add_question(o, "q", NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_add_question(o, BAD_UTF8, "a") == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_add_question(o, "q", BAD_UTF8) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_options_add_question(o, "", "") == EXONA_OK);
    for (i = 1; i < 50; i++) CHECK(exona_scan_options_add_question(o, "q", "a") == EXONA_OK);
    CHECK(exona_scan_options_add_question(o, "q", "a") == EXONA_ERR_INVALID_ARGUMENT);

    CHECK(exona_cancel(NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_cancel_is_cancelled(NULL) == false);
    CHECK(exona_cancel_is_cancelled(t) == false);
    CHECK(exona_cancel(t) == EXONA_OK);
    CHECK(exona_cancel(t) == EXONA_OK);
    CHECK(exona_cancel_is_cancelled(t) == true);
    exona_cancel_free(t); /* the options keep their own reference */
    exona_cancel_free(NULL);
    exona_scan_options_free(o);
    exona_scan_options_free(NULL);
}

static void scans_with_bad_arguments(exona_client *client) {
    exona_result *r = NULL;
    CHECK(exona_scan_and_wait(NULL, "A", "https://a.ai", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "client");
    CHECK(exona_scan_and_wait(client, NULL, "https://a.ai", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "company_name");
    CHECK(exona_scan_and_wait(client, "A", NULL, NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "company_website");
    CHECK(exona_scan_and_wait(client, "", "https://a.ai", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "company_name");
    CHECK(exona_scan_and_wait(client, "A", "", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "company_website");
    CHECK(exona_scan_and_wait(client, BAD_UTF8, "https://a.ai", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "UTF-8");
    CHECK(exona_scan_and_wait(client, "A", "http://a.ai", NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "https://");
    CHECK(exona_scan_and_wait(client, NULL, NULL, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_create(client, "A", BAD_UTF8, NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "company_website");
    CHECK(exona_scan_create(NULL, NULL, NULL, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_get(client, NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "scan_id");
    CHECK(exona_scan_get(client, "", &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "scan_id");
    CHECK(exona_scan_get(client, "../../admin", &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "scan_id");
    CHECK(exona_scan_get(NULL, "scn_1", NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_scan_wait(client, BAD_UTF8, NULL, &r) == EXONA_ERR_INVALID_ARGUMENT);
    expect_invalid(EXONA_ERR_INVALID_ARGUMENT, r, "scan_id");
    CHECK(exona_scan_wait(NULL, "scn_1", NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
}

static void batches(exona_client *client) {
    exona_batch *b = exona_batch_new(client);
    exona_result *r = (exona_result *)1;
    size_t index = 7, q = 1, f = 1, d = 1;
    CHECK(exona_batch_new(NULL) == NULL);
    CHECK(b != NULL);
    CHECK(exona_batch_add(NULL, "A", "https://a.ai", NULL, &index) == EXONA_ERR_INVALID_ARGUMENT && index == 7);
    CHECK(exona_batch_add(b, NULL, "https://a.ai", NULL, &index) == EXONA_ERR_INVALID_ARGUMENT && index == 7);
    CHECK(exona_batch_add(b, "A", NULL, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_add(b, "A", BAD_UTF8, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_next(NULL, 0, &r) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_next(b, 0, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_next(b, 0, &r) == EXONA_ERR_NOT_FOUND && r == NULL); /* nothing added */
    CHECK(exona_batch_run(b, 0, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_run(NULL, 0, NULL, NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_cancel(NULL, 0) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_cancel(b, 0) == EXONA_ERR_INVALID_ARGUMENT); /* never added */
    CHECK(exona_batch_cancel(b, (size_t)-1) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_cancel_all(NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_cancel_all(b) == EXONA_OK);
    CHECK(exona_batch_counts(NULL, &q, &f, &d) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_batch_counts(b, NULL, NULL, NULL) == EXONA_OK);
    CHECK(exona_batch_counts(b, &q, &f, &d) == EXONA_OK && q == 0 && f == 0 && d == 0);
    /* A request the API would refuse is added; its result says why. */
    CHECK(exona_batch_add(b, "A", "http://a.ai", NULL, &index) == EXONA_OK && index == 0);
    CHECK(exona_batch_next(b, UINT64_MAX, &r) == EXONA_OK);
    CHECK(exona_result_code(r) == EXONA_ERR_INVALID_ARGUMENT && exona_result_index(r) == 0);
    exona_result_free(r);
    /* Freed with a request still running: it is cancelled, nothing leaks. */
    CHECK(exona_batch_add(b, "S", "https://stuck.acme.ai", NULL, NULL) == EXONA_OK);
    exona_batch_free(b);
    exona_batch_free(NULL);
    CHECK(exona_result_index(NULL) == (size_t)-1);
}

static void null_results(void) {
    int64_t v = 42;
    CHECK(exona_result_code(NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_result_message(NULL) == NULL);
    CHECK(exona_result_scan_id(NULL) == NULL);
    CHECK(exona_result_json(NULL) == NULL);
    CHECK(exona_result_get_string(NULL, "/id") == NULL);
    CHECK(exona_result_get_int(NULL, "/x", &v) == EXONA_ERR_INVALID_ARGUMENT && v == 42);
    CHECK(exona_result_http_status(NULL) == 0);
    CHECK(exona_result_error_code(NULL) == NULL);
    CHECK(exona_result_hint(NULL) == NULL);
    CHECK(exona_result_param(NULL) == NULL);
    CHECK(exona_result_request_id(NULL) == NULL);
    CHECK(exona_result_cached(NULL) == false);
    CHECK(exona_result_retry_after_ms(NULL) == 0);
    exona_result_free(NULL);
}

/* A completed scan's result, read with bad pointers. */
static void result_accessors(const exona_result *r) {
    int64_t v = 7;
    CHECK(exona_result_get_string(r, NULL) == NULL);
    CHECK(exona_result_get_string(r, BAD_UTF8) == NULL);
    CHECK(exona_result_get_string(r, "no-leading-slash") == NULL);
    CHECK(exona_result_get_string(r, "/result/risk_assessment/autonomy/score") == NULL); /* a number */
    CHECK(exona_result_get_string(r, "/result/matched_incidents/99999") == NULL);
    CHECK(exona_result_get_string(r, "") == NULL); /* the whole object is not a string */
    CHECK(exona_result_get_int(r, NULL, &v) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_result_get_int(r, "/id", NULL) == EXONA_ERR_INVALID_ARGUMENT);
    CHECK(exona_result_get_int(r, "/id", &v) == EXONA_ERR_NOT_FOUND && v == 7);
    CHECK(exona_result_get_int(r, "/result/risk_assessment/autonomy/score", &v) == EXONA_OK);
    CHECK(v >= 0 && v <= 3);
}

struct shared {
    exona_client *client;
    const exona_result *result;
    const char *level;
};

struct worker {
    const struct shared *shared;
    int failures; /* each thread counts its own */
};

/* Many threads: one client for requests, one result for reads. */
static void *hammer(void *arg) {
    struct worker *w = arg;
    const struct shared *s = w->shared;
    int i;
    for (i = 0; i < 200; i++) {
        const char *level = exona_result_get_string(s->result, "/result/risk_assessment/overall_risk_level");
        if (level != s->level) w->failures++; /* the same pointer, every time, from every thread */
        if (exona_result_code(s->result) != EXONA_OK) w->failures++;
        (void)exona_result_json(s->result);
    }
    for (i = 0; i < 3; i++) {
        exona_result *r = NULL;
        if (exona_scan_get(s->client, "scn_test_does_not_exist", &r) != EXONA_ERR_NOT_FOUND) w->failures++;
        if (exona_result_request_id(r) == NULL) w->failures++;
        exona_result_free(r);
    }
    return NULL;
}

int main(void) {
    exona_client *client = NULL;
    exona_result *r = NULL;
    exona_code rc;
    struct shared shared;
    struct worker workers[8];
    pthread_t threads[8];
    int i, failures = 0;

    codes_and_version();
    clients();
    client_options();
    options();
    null_results();

    client = exona_client_new(NULL, NULL); /* EXONA_API_KEY, EXONA_BASE_URL */
    CHECK(client != NULL);
    scans_with_bad_arguments(client);
    batches(client);

    rc = exona_scan_and_wait(client, "Acme AI Ltd", "https://acme.ai", NULL, &r);
    CHECK(rc == EXONA_OK);
    result_accessors(r);

    shared.client = client;
    shared.result = r;
    shared.level = exona_result_get_string(r, "/result/risk_assessment/overall_risk_level");
    CHECK(shared.level != NULL);
    for (i = 0; i < 8; i++) {
        workers[i].shared = &shared;
        workers[i].failures = 0;
        CHECK(pthread_create(&threads[i], NULL, hammer, &workers[i]) == 0);
    }
    for (i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
    }
    CHECK(failures == 0);

    exona_result_free(r);
    exona_client_free(client);
    printf("misuse: %d checks passed\n", checks);
    return 0;
}

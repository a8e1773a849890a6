/*
 * cancel.c: follow a scan's progress, cancel it from another thread, then resume it by id.
 *
 *   EXONA_API_KEY=... EXONA_BASE_URL=... ./cancel COMPANY_NAME COMPANY_WEBSITE [CANCEL_AFTER_MS]
 *
 * A watchdog thread gives the scan CANCEL_AFTER_MS (default 1000) from the moment it exists
 * (the first progress event with a scan id), then calls exona_cancel. The wait returns
 * EXONA_ERR_CANCELLED with the scan id, and exona_scan_wait resumes the same scan without a
 * new POST. Exit status: 0 when the resumed wait completed, 1 otherwise, 2 for usage errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exona.h"

struct watchdog {
    exona_cancel_token *token;
    long after_ms;
    pthread_mutex_t lock;
    pthread_cond_t started; /* signalled once the scan exists, or the call is over */
    int scan_exists, call_over;
    int events;
};

static void *watchdog_main(void *arg) {
    struct watchdog *w = arg;
    struct timespec delay;
    pthread_mutex_lock(&w->lock);
    while (!w->scan_exists && !w->call_over) pthread_cond_wait(&w->started, &w->lock);
    pthread_mutex_unlock(&w->lock);
    delay.tv_sec = w->after_ms / 1000;
    delay.tv_nsec = (w->after_ms % 1000) * 1000000L;
    nanosleep(&delay, NULL);
    exona_cancel(w->token); /* safe from any thread */
    return NULL;
}

/* Wakes the watchdog: the scan exists, or the call ended without one. */
static void tell_watchdog(struct watchdog *w, int scan_exists) {
    pthread_mutex_lock(&w->lock);
    if (scan_exists) w->scan_exists = 1; else w->call_over = 1;
    pthread_cond_signal(&w->started);
    pthread_mutex_unlock(&w->lock);
}

static const char *REASONS[] = {"create", "schedule", "retry-after", "backoff",
                                "rate-limit", "budget", "final-poll"};
/* Indexed by exona_poll_mode: the regime a wait was planned in. */
static const char *REGIMES[] = {"balanced", "latency", "frugal", "adaptive"};

/* Runs on the waiting thread before every wait. Returning non-zero would cancel. */
static int on_progress(const exona_progress *p, void *user_data) {
    struct watchdog *w = user_data;
    w->events++;
    if (p->scan_id != NULL) tell_watchdog(w, 1);
    printf("progress: scan %s status %s, waiting %llu ms (%s), %u request(s) used, budget %u, "
           "polling %s (thrift %u/1000)\n",
           p->scan_id ? p->scan_id : "(not created)", p->status ? p->status : "-",
           (unsigned long long)p->wait_ms,
           (unsigned)p->reason < sizeof REASONS / sizeof REASONS[0] ? REASONS[p->reason] : "?",
           (unsigned)p->requests_used, (unsigned)p->budget_left,
           (unsigned)p->regime < sizeof REGIMES / sizeof REGIMES[0] ? REGIMES[p->regime] : "?",
           (unsigned)p->thrift_permille);
    return 0;
}

int main(int argc, char **argv) {
    exona_client *client = NULL;
    exona_result *result = NULL;
    exona_scan_options *options = NULL;
    struct watchdog w;
    pthread_t thread;
    char scan_id[256];
    int status = 1;
    exona_code rc;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s COMPANY_NAME COMPANY_WEBSITE [CANCEL_AFTER_MS]\n", argv[0]);
        return 2;
    }
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.started, NULL);
    w.after_ms = argc == 4 ? strtol(argv[3], NULL, 10) : 1000;
    if (exona_client_create(NULL, NULL, &client, &result) != EXONA_OK) {
        fprintf(stderr, "error: %s\n", exona_result_message(result));
        exona_result_free(result);
        pthread_cond_destroy(&w.started);
        pthread_mutex_destroy(&w.lock);
        return 1;
    }
    w.token = exona_cancel_new();
    options = exona_scan_options_new();
    exona_scan_options_set_cancel(options, w.token);
    exona_scan_options_set_progress(options, on_progress, &w);

    if (pthread_create(&thread, NULL, watchdog_main, &w) != 0) {
        fprintf(stderr, "error: cannot start the watchdog thread\n");
        goto out;
    }
    rc = exona_scan_and_wait(client, argv[1], argv[2], options, &result);
    tell_watchdog(&w, 0);
    pthread_join(thread, NULL);
    printf("first wait: %s after %d progress event(s)\n", exona_code_name((int)rc), w.events);
    if (rc != EXONA_ERR_CANCELLED || exona_result_scan_id(result) == NULL) {
        fprintf(stderr, "error: expected a cancelled wait with a scan id: %s\n",
                exona_result_message(result) ? exona_result_message(result) : "(no message)");
        goto out;
    }
    /* Keep the id: the result's strings die with the result. */
    snprintf(scan_id, sizeof scan_id, "%s", exona_result_scan_id(result));
    exona_result_free(result);
    result = NULL;
    printf("cancelled scan: %s\n", scan_id);

    /* Resume with fresh options (the old token stays cancelled). No POST is sent. */
    exona_scan_options_free(options);
    options = exona_scan_options_new();
    exona_scan_options_set_progress(options, on_progress, &w);
    rc = exona_scan_wait(client, scan_id, options, &result);
    printf("resumed wait: %s, overall risk %s\n", exona_code_name((int)rc),
           exona_result_get_string(result, "/result/risk_assessment/overall_risk_level")
               ? exona_result_get_string(result, "/result/risk_assessment/overall_risk_level")
               : "-");
    status = rc == EXONA_OK && strcmp(exona_result_scan_id(result), scan_id) == 0 ? 0 : 1;

out:
    exona_result_free(result);
    exona_scan_options_free(options);
    exona_cancel_free(w.token);
    exona_client_free(client);
    pthread_cond_destroy(&w.started);
    pthread_mutex_destroy(&w.lock);
    return status;
}

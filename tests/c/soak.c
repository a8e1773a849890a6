/*
 * soak.c: 1,000 scans on one client from 32 threads, then a million accessor calls on one
 * result, printing the resident set size (RSS) as it goes, so a leak shows as growth.
 *
 *   EXONA_API_KEY=... EXONA_BASE_URL=... ./soak [SCANS] [ACCESSOR_CALLS]
 *
 * Output lines: "rss scans=N kib=K" and "rss calls=N kib=K"; "soak: done" at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exona.h"

#define THREADS 32

static long rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * 4; /* 4 KiB pages */
}

struct shared {
    exona_client *client;
    pthread_mutex_t lock;
    int next, total, done, failed;
};

static void *worker(void *arg) {
    struct shared *s = arg;
    for (;;) {
        char website[96];
        exona_result *r = NULL;
        int i, report = 0;
        pthread_mutex_lock(&s->lock);
        i = s->next < s->total ? s->next++ : -1;
        pthread_mutex_unlock(&s->lock);
        if (i < 0) return NULL;
        snprintf(website, sizeof website, "https://soak-%d.example", i);
        if (exona_scan_and_wait(s->client, "Soak Co", website, NULL, &r) != EXONA_OK) {
            pthread_mutex_lock(&s->lock);
            s->failed++;
            pthread_mutex_unlock(&s->lock);
        }
        exona_result_free(r);
        pthread_mutex_lock(&s->lock);
        s->done++;
        report = s->done % (s->total / 4 > 0 ? s->total / 4 : 1) == 0;
        if (report) printf("rss scans=%d kib=%ld\n", s->done, rss_kib());
        pthread_mutex_unlock(&s->lock);
    }
}

int main(int argc, char **argv) {
    struct shared s;
    pthread_t threads[THREADS];
    exona_result *r = NULL;
    long calls = argc > 2 ? atol(argv[2]) : 1000000, n;
    size_t sink = 0;
    int i;

    memset(&s, 0, sizeof s);
    s.total = argc > 1 ? atoi(argv[1]) : 1000;
    s.client = exona_client_new(NULL, NULL);
    if (s.client == NULL || s.total < 1) return 2;
    pthread_mutex_init(&s.lock, NULL);
    printf("rss scans=0 kib=%ld\n", rss_kib());
    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, &s);
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("scans failed=%d\n", s.failed);

    if (exona_scan_and_wait(s.client, "Soak Co", "https://soak-0.example", NULL, &r) != EXONA_OK) return 1;
    for (n = 1; n <= calls; n++) {
        /* The same questions again and again: answers are built once, then reused. */
        sink += strlen(exona_result_get_string(r, "/result/risk_assessment/overall_risk_level"));
        sink += exona_result_http_status(r) + (size_t)exona_result_code(r);
        if (n % (calls / 4 > 0 ? calls / 4 : 1) == 0) printf("rss calls=%ld kib=%ld\n", n, rss_kib());
    }
    exona_result_free(r);
    pthread_mutex_destroy(&s.lock);
    exona_client_free(s.client);
    printf("soak: done (%zu)\n", sink);
    return s.failed == 0 ? 0 : 1;
}

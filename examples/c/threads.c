/*
 * threads.c: many threads, one client. Each thread scans one company with
 * exona_scan_and_wait; the client's scheduler paces all of them within the key's budget.
 *
 *   EXONA_API_KEY=... EXONA_BASE_URL=... ./threads [THREADS]    (default 8, at most 256)
 *
 * Prints one line per scan and a summary. Exit status 0 when every scan completed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "exona.h"

#define MAX_THREADS 256

struct job {
    exona_client *client; /* shared: exona_client is thread-safe */
    int index;
    exona_code rc;
    char level[32];
    char scan_id[128];
};

static void *scan_one(void *arg) {
    struct job *job = arg;
    char name[64], website[96];
    exona_result *result = NULL;

    snprintf(name, sizeof name, "Company %d", job->index);
    snprintf(website, sizeof website, "https://company-%d.example", job->index);
    job->rc = exona_scan_and_wait(job->client, name, website, NULL, &result);
    snprintf(job->level, sizeof job->level, "%s",
             job->rc == EXONA_OK
                 ? exona_result_get_string(result, "/result/risk_assessment/overall_risk_level")
                 : exona_code_name((int)job->rc));
    snprintf(job->scan_id, sizeof job->scan_id, "%s",
             exona_result_scan_id(result) ? exona_result_scan_id(result) : "-");
    exona_result_free(result);
    return NULL;
}

int main(int argc, char **argv) {
    static struct job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    exona_client *client = NULL;
    exona_result *error = NULL;
    int n = argc > 1 ? atoi(argv[1]) : 8;
    int i, completed = 0;

    if (n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "usage: %s [THREADS]   (1 to %d)\n", argv[0], MAX_THREADS);
        return 2;
    }
    if (exona_client_create(NULL, NULL, &client, &error) != EXONA_OK) {
        fprintf(stderr, "error: %s\n", exona_result_message(error));
        exona_result_free(error);
        return 1;
    }
    for (i = 0; i < n; i++) {
        jobs[i].client = client;
        jobs[i].index = i;
        if (pthread_create(&threads[i], NULL, scan_one, &jobs[i]) != 0) {
            fprintf(stderr, "error: cannot start thread %d\n", i);
            n = i;
            break;
        }
    }
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        printf("company %3d  %-12s  %s\n", jobs[i].index, jobs[i].level, jobs[i].scan_id);
        completed += jobs[i].rc == EXONA_OK;
    }
    printf("%d of %d scans completed\n", completed, n);
    exona_client_free(client);
    return completed == n ? 0 : 1;
}

/*
 * fork.c: a client made before fork() works in the child (DESIGN.md 9.2), as a preforking
 * server uses it: the parent makes the client at boot, scans, then forks workers.
 *
 *   EXONA_API_KEY=... EXONA_BASE_URL=... ./fork
 *
 * 1. After a call: the child scans with the parent's client, frees it and exits 0; the parent
 *    then scans again.
 * 2. While another thread of the parent is inside a call: the child scans with the parent's
 *    client and frees it; the parent's call completes.
 *
 * A child that hangs is killed by an alarm (exit by SIGALRM); one whose free panics or blocks
 * does not exit 0. Prints one line per step; exit status 0 when every step passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exona.h"

/* A child gets this long for its scan and its free; the scan's own timeout is shorter. */
#define CHILD_ALARM_S 20
#define SCAN_TIMEOUT_MS 15000

static int scan(exona_client *client, const char *who, const char *name, const char *website) {
    exona_scan_options *options = exona_scan_options_new();
    exona_result *result = NULL;
    struct timespec t0, t1;
    exona_code rc;

    exona_scan_options_set_timeout_ms(options, SCAN_TIMEOUT_MS);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = exona_scan_and_wait(client, name, website, options, &result);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %s %s in %.2f s (%s)\n", who, name, exona_code_name((int)rc),
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           rc == EXONA_OK ? exona_result_get_string(result, "/result/risk_assessment/overall_risk_level")
                          : exona_result_message(result));
    fflush(stdout);
    exona_result_free(result);
    exona_scan_options_free(options);
    return rc == EXONA_OK;
}

/* Forks a child that scans with `client`, frees it and exits; returns whether it exited 0. */
static int child_scans(exona_client *client, const char *name, const char *website) {
    int status = 0;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 0;
    }
    if (pid == 0) {
        int ok;
        alarm(CHILD_ALARM_S);
        ok = scan(client, "child", name, website);
        exona_client_free(client);
        printf("child: freed the inherited client\n");
        fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 0;
    }
    if (WIFSIGNALED(status)) {
        printf("parent: the child died of signal %d%s\n", WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
        return 0;
    }
    printf("parent: the child exited %d\n", WEXITSTATUS(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct call {
    exona_client *client;
    int ok;
};

static void *long_call(void *arg) {
    struct call *call = arg;
    call->ok = scan(call->client, "parent thread", "Inside Ltd", "https://inside.example");
    return NULL;
}

int main(void) {
    exona_client *client = NULL;
    exona_result *error = NULL;
    struct call call;
    pthread_t thread;
    struct timespec pause = {0, 100 * 1000 * 1000};
    int passed = 1;

    if (exona_client_create(NULL, NULL, &client, &error) != EXONA_OK) {
        fprintf(stderr, "error: %s\n", exona_result_message(error));
        exona_result_free(error);
        return 1;
    }

    /* 1. Fork after calls: the engine's threads and connections exist only in the parent. */
    passed &= scan(client, "parent", "Before Fork Ltd", "https://before-fork.example");
    passed &= child_scans(client, "Child One Ltd", "https://child-one.example");
    passed &= scan(client, "parent", "After Fork Ltd", "https://after-fork.example");

    /* 2. Fork while another thread is inside a call. */
    call.client = client;
    call.ok = 0;
    if (pthread_create(&thread, NULL, long_call, &call) != 0) {
        fprintf(stderr, "error: cannot start a thread\n");
        return 1;
    }
    nanosleep(&pause, NULL);
    passed &= child_scans(client, "Child Two Ltd", "https://child-two.example");
    pthread_join(thread, NULL);
    passed &= call.ok;

    exona_client_free(client);
    printf("%s\n", passed ? "every step passed" : "a step failed");
    return passed ? 0 : 1;
}

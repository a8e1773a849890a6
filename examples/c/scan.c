/*
 * scan.c: scan one company with libexona and print its AI risk assessment.
 *
 *   EXONA_API_KEY=exo_test_... EXONA_BASE_URL=http://127.0.0.1:PORT/api/v1 \
 *       ./scan "Acme AI Ltd" https://acme.ai [max_age_days]
 *
 * Exit status: 0 when the scan completed, 1 when it did not (the code name, message and
 * request id are printed), 2 for a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "exona.h"

static const char *const DIMENSIONS[] = {
    "ai_intensity", "autonomy", "domain_risk",
    "blast_radius", "data_content_ip_risk", "control_governance",
};

static const char *or_dash(const char *s) { return s ? s : "-"; }

/* Prints why a call failed; a result may be NULL when none was handed back. */
static int report_failure(exona_code rc, const exona_result *result) {
    fprintf(stderr, "error: %s: %s\n", exona_code_name((int)rc),
            or_dash(exona_result_message(result)));
    fprintf(stderr, "  api error code: %s\n", or_dash(exona_result_error_code(result)));
    fprintf(stderr, "  request id:     %s\n", or_dash(exona_result_request_id(result)));
    if (exona_result_scan_id(result) != NULL) {
        /* A scan exists: it can be resumed with exona_scan_wait instead of creating another. */
        fprintf(stderr, "  scan id:        %s\n", exona_result_scan_id(result));
    }
    if (exona_result_hint(result) != NULL) {
        fprintf(stderr, "  hint:           %s\n", exona_result_hint(result));
    }
    return 1;
}

static void print_assessment(const exona_result *result) {
    char pointer[128];
    size_t i;

    printf("scan:          %s%s\n", exona_result_scan_id(result),
           exona_result_cached(result) ? " (cached)" : "");
    printf("company:       %s\n", or_dash(exona_result_get_string(result, "/company/name")));
    printf("overall risk:  %s\n",
           or_dash(exona_result_get_string(result, "/result/risk_assessment/overall_risk_level")));
    for (i = 0; i < sizeof DIMENSIONS / sizeof DIMENSIONS[0]; i++) {
        int64_t score = -1;
        snprintf(pointer, sizeof pointer, "/result/risk_assessment/%s/score", DIMENSIONS[i]);
        if (exona_result_get_int(result, pointer, &score) != EXONA_OK) {
            score = -1;
        }
        snprintf(pointer, sizeof pointer, "/result/risk_assessment/%s/label", DIMENSIONS[i]);
        printf("  %-22s %2lld  %s\n", DIMENSIONS[i], (long long)score,
               or_dash(exona_result_get_string(result, pointer)));
    }
    printf("regulatory:    %s\n",
           or_dash(exona_result_get_string(result, "/result/risk_assessment/regulatory_exposure")));
}

int main(int argc, char **argv) {
    exona_client *client = NULL;
    exona_scan_options *options = NULL;
    exona_result *result = NULL;
    exona_code rc;
    int status;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s COMPANY_NAME COMPANY_WEBSITE [MAX_AGE_DAYS]\n", argv[0]);
        return 2;
    }
    printf("libexona %s\n", exona_version());

    /* NULL, NULL: the key from EXONA_API_KEY, the URL from EXONA_BASE_URL (else production). */
    rc = exona_client_create(NULL, NULL, &client, &result);
    if (rc != EXONA_OK) {
        status = report_failure(rc, result);
        exona_result_free(result);
        return status;
    }

    options = exona_scan_options_new();
    if (options == NULL) {
        exona_client_free(client);
        return 1;
    }
    if (argc == 4) {
        char *end = NULL;
        unsigned long days;
        errno = 0;
        days = strtoul(argv[3], &end, 10);
        if (errno != 0 || end == argv[3] || *end != '\0' || days > UINT32_MAX ||
            exona_scan_options_set_max_age_days(options, (uint32_t)days) != EXONA_OK) {
            fprintf(stderr, "error: MAX_AGE_DAYS must be a whole number from 0 to 365, not '%s'\n",
                    argv[3]);
            exona_scan_options_free(options);
            exona_client_free(client);
            return 2;
        }
    }

    rc = exona_scan_and_wait(client, argv[1], argv[2], options, &result);
    if (rc == EXONA_OK) {
        print_assessment(result);
        status = 0;
    } else {
        status = report_failure(rc, result);
    }

    exona_result_free(result);
    exona_scan_options_free(options);
    exona_client_free(client);
    return status;
}

#include <stdio.h>
#include "exona.h"

static const char *or_none(const char *s) { return s ? s : "none"; }

int main(void) {
    exona_client *client = NULL;
    exona_result *result = NULL;
    exona_scan_options *options = NULL;
    exona_code rc;

    /* NULL, NULL: key from EXONA_API_KEY, URL from EXONA_BASE_URL (else production). */
    if (exona_client_create(NULL, NULL, &client, &result) != EXONA_OK) {
        fprintf(stderr, "%s\n", exona_result_message(result));
        exona_result_free(result);
        return 1;
    }

    options = exona_scan_options_new();
    exona_scan_options_set_max_age_days(options, 30);    /* reuse a scan up to 30 days old */
    exona_scan_options_set_timeout_ms(options, 300000);  /* stop waiting after 5 minutes */

    rc = exona_scan_and_wait(client, "Acme AI Ltd", "https://acme.ai", options, &result);
    if (rc == EXONA_OK) {
        int64_t score = 0;
        printf("overall: %s\n",
               exona_result_get_string(result, "/result/risk_assessment/overall_risk_level"));
        if (exona_result_get_int(result, "/result/risk_assessment/autonomy/score", &score) == EXONA_OK)
            printf("autonomy: %lld\n", (long long)score);
    } else {
        /* The same result object carries the failure. */
        fprintf(stderr, "%s: %s (request id %s, scan id %s)\n", exona_code_name((int)rc),
                exona_result_message(result), or_none(exona_result_request_id(result)),
                or_none(exona_result_scan_id(result)));
    }
    exona_result_free(result);
    exona_scan_options_free(options);
    exona_client_free(client);
    return rc == EXONA_OK ? 0 : 1;
}

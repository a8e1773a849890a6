/* The fuzz entry into examples/c/csv_line.h: one line, as batch.c reads it. */
#include <stdlib.h>
#include <string.h>

#include "csv_line.h"

/* Returns 0 when the line parsed, 1 when it was refused (with a reason). The fields are
 * checked to be NUL-terminated within their buffers. */
int exona_fuzz_csv_line(const char *line) {
    struct row *row = malloc(sizeof *row);
    const char *why;
    int refused;
    if (row == NULL) return 1;
    why = parse_line(line, row);
    refused = why != NULL;
    if (!refused && (memchr(row->name, 0, MAX_FIELD) == NULL || memchr(row->website, 0, MAX_FIELD) == NULL)) {
        abort();
    }
    free(row);
    return refused;
}

/*
 * csv_line.h: the CSV line reader of batch.c, in a header of its own so the fuzz target
 * (fuzz/c/csv_line.c) runs exactly the code the example runs.
 *
 * One line holds company_name,company_website; fields may be quoted, with commas inside and
 * doubled quotes standing for one.
 */
#ifndef EXONA_EXAMPLE_CSV_LINE_H
#define EXONA_EXAMPLE_CSV_LINE_H

#include <stddef.h>

#define MAX_FIELD 512

struct row {
    char name[MAX_FIELD];
    char website[MAX_FIELD];
};

/* Splits one CSV line into two fields. Returns NULL on success, else what was wrong. */
static const char *parse_line(const char *line, struct row *row) {
    char *fields[2];
    size_t lens[2] = {0, 0};
    int field = 0;
    const char *p = line;

    fields[0] = row->name;
    fields[1] = row->website;
    for (;;) {
        int quoted = *p == '"';
        if (quoted) p++;
        for (;;) {
            if (*p == '\0' || *p == '\n' || *p == '\r') {
                if (quoted) return "a quoted field is not closed";
                break;
            }
            if (quoted && *p == '"') {
                if (p[1] == '"') {
                    p++; /* a doubled quote stands for one */
                } else {
                    p++;
                    break;
                }
            } else if (!quoted && *p == ',') {
                break;
            }
            if (lens[field] + 1 >= MAX_FIELD) return "a field is longer than 511 characters";
            fields[field][lens[field]++] = *p++;
        }
        fields[field][lens[field]] = '\0';
        if (*p == ',') {
            if (++field > 1) return "more than two fields";
            p++;
            continue;
        }
        if (*p != '\0' && *p != '\n' && *p != '\r') return "text after a closing quote";
        break;
    }
    if (field < 1) return "one field; expected company_name,company_website";
    if (lens[0] == 0) return "the company name is empty";
    return NULL;
}

#endif

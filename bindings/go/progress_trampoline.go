package exona

// The C side of progress callbacks: a C function the library can call, passing the event on
// to the exported Go function in progress.go (a file with //export may only declare C).

/*
#include "exona.h"

extern int exonaGoProgress(exona_progress *progress, void *user_data);

static int exona_go_progress(const exona_progress *progress, void *user_data) {
    return exonaGoProgress((exona_progress *)progress, user_data);
}

static exona_progress_fn exona_go_progress_fn(void) { return exona_go_progress; }
*/
import "C"

// progressFn is the C callback that forwards to Go.
func progressFn() C.exona_progress_fn { return C.exona_go_progress_fn() }

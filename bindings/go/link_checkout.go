//go:build !exona_installed

package exona

// The default: link the library built in this repository (cargo build --release -p exona at
// the top), with an rpath to it, so tests and examples run from a checkout as they are.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -lexona
*/
import "C"

package exona

/*
#include <stdint.h>
#include <stdlib.h>
#include "exona.h"
*/
import "C"

import (
	"runtime/cgo"
	"time"
	"unsafe"
)

// WaitReason says why a call waits before its next request.
type WaitReason int

const (
	WaitCreate     WaitReason = C.EXONA_WAIT_CREATE
	WaitSchedule   WaitReason = C.EXONA_WAIT_SCHEDULE
	WaitRetryAfter WaitReason = C.EXONA_WAIT_RETRY_AFTER
	WaitBackoff    WaitReason = C.EXONA_WAIT_BACKOFF
	WaitRateLimit  WaitReason = C.EXONA_WAIT_RATE_LIMIT
	WaitBudget     WaitReason = C.EXONA_WAIT_BUDGET
	WaitFinalPoll  WaitReason = C.EXONA_WAIT_FINAL_POLL
	// WaitOtherCreate: another process sharing the state directory is creating a scan of
	// the same company; this call joins it instead of creating a twin.
	WaitOtherCreate WaitReason = C.EXONA_WAIT_OTHER_CREATE
)

// Progress is one event of a waiting call: why and how long it waits before its next request.
type Progress struct {
	ScanID       string // empty while the scan is not created yet
	Status       string // the scan's last known status; empty before the first poll
	Reason       WaitReason
	Wait         time.Duration
	RequestsUsed int // requests this call has sent so far
	BudgetLeft   int // requests the API key's budget allows now
	// Regime is the mode the wait was planned in; for an Adaptive scan, where the budget put
	// it: Latency (requests to spare), Frugal (none beyond its reservation) or Adaptive.
	Regime PollMode
	// Thrift places the wait between latency-like (0) and frugal-like (1) polling.
	Thrift float64
}

// modeOf maps a C exona_poll_mode to a PollMode.
func modeOf(m C.exona_poll_mode) PollMode {
	switch m {
	case C.EXONA_POLL_ADAPTIVE:
		return Adaptive
	case C.EXONA_POLL_BALANCED:
		return Balanced
	case C.EXONA_POLL_LATENCY:
		return Latency
	case C.EXONA_POLL_FRUGAL:
		return Frugal
	}
	return DefaultMode
}

// progressHandle keeps a callback reachable from C for the length of one call: the C side
// holds a pointer to C memory that stores the cgo.Handle (never a Go pointer).
type progressHandle struct {
	handle cgo.Handle
	cell   unsafe.Pointer
}

func newProgressHandle(f func(Progress) bool) *progressHandle {
	h := cgo.NewHandle(f)
	cell := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(cell) = C.uintptr_t(h)
	return &progressHandle{handle: h, cell: cell}
}

func (p *progressHandle) release() {
	p.handle.Delete()
	C.free(p.cell)
}

//export exonaGoProgress
func exonaGoProgress(p *C.exona_progress, userData unsafe.Pointer) C.int {
	f, ok := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(func(Progress) bool)
	if !ok || f == nil {
		return 0
	}
	event := Progress{
		Reason:       WaitReason(p.reason),
		Wait:         time.Duration(p.wait_ms) * time.Millisecond,
		RequestsUsed: int(p.requests_used),
		BudgetLeft:   int(p.budget_left),
		Regime:       modeOf(p.regime),
		Thrift:       float64(p.thrift_permille) / 1000,
	}
	if p.scan_id != nil {
		event.ScanID = C.GoString(p.scan_id)
	}
	if p.status != nil {
		event.Status = C.GoString(p.status)
	}
	if f(event) {
		return 0
	}
	return 1 // the callback asked to cancel
}

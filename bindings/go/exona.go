// Package exona is the Go binding of libexona, the client library for the Exona AI-risk
// scanning API. It calls the C library through cgo.
//
// Where the C library comes from (see README.md): by default, the repository's own build in
// ../../target/release (link_checkout.go); with the build tag exona_installed, an installed
// libexona found through pkg-config (link_installed.go), with no checkout path in the binary.
package exona

/*
#include <stdlib.h>
#include "exona.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Version is the C library's version.
func Version() string { return C.GoString(C.exona_version()) }

// Code classifies an outcome; the values are the C library's exona_code.
type Code int

const (
	CodeOK              Code = C.EXONA_OK
	CodeInvalidArgument Code = C.EXONA_ERR_INVALID_ARGUMENT
	CodeAuthentication  Code = C.EXONA_ERR_AUTHENTICATION
	CodePermission      Code = C.EXONA_ERR_PERMISSION
	CodeBadRequest      Code = C.EXONA_ERR_BAD_REQUEST
	CodeNotFound        Code = C.EXONA_ERR_NOT_FOUND
	CodeRateLimited     Code = C.EXONA_ERR_RATE_LIMITED
	CodeServer          Code = C.EXONA_ERR_SERVER
	CodeNetwork         Code = C.EXONA_ERR_NETWORK
	CodeProtocol        Code = C.EXONA_ERR_PROTOCOL
	CodeTimeout         Code = C.EXONA_ERR_TIMEOUT
	CodeCancelled       Code = C.EXONA_ERR_CANCELLED
	CodeScanFailed      Code = C.EXONA_ERR_SCAN_FAILED
	CodeAmbiguousCreate Code = C.EXONA_ERR_AMBIGUOUS_CREATE
	CodeInternal        Code = C.EXONA_ERR_INTERNAL
)

// String is the C name of the code, e.g. "EXONA_ERR_TIMEOUT".
func (c Code) String() string { return C.GoString(C.exona_code_name(C.int(c))) }

// Error is a failed call: its code and everything the API said. Compare with errors.Is
// against the Err* values (which match on the code) or take it with errors.As.
type Error struct {
	Code       Code
	Message    string
	HTTPStatus int
	APICode    string // the API's error.code (or a failed scan's)
	Hint       string
	Param      string
	RequestID  string // quote it to Exona support
	ScanID     string // set whenever a scan exists: resume it with Wait
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Is matches another *Error with the same code, so errors.Is(err, exona.ErrTimeout) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

var (
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrAuthentication  = &Error{Code: CodeAuthentication}
	ErrPermission      = &Error{Code: CodePermission}
	ErrBadRequest      = &Error{Code: CodeBadRequest}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrRateLimited     = &Error{Code: CodeRateLimited}
	ErrServer          = &Error{Code: CodeServer}
	ErrNetwork         = &Error{Code: CodeNetwork}
	ErrProtocol        = &Error{Code: CodeProtocol}
	ErrTimeout         = &Error{Code: CodeTimeout}
	ErrCancelled       = &Error{Code: CodeCancelled}
	ErrScanFailed      = &Error{Code: CodeScanFailed}
	ErrAmbiguousCreate = &Error{Code: CodeAmbiguousCreate}
	ErrInternal        = &Error{Code: CodeInternal}
)

// Dimension is one scored risk dimension.
type Dimension struct {
	Score     int    `json:"score"`
	Label     string `json:"label"`
	Rationale string `json:"rationale"`
}

// Scan is a scan object as the API returned it, with typed access to the documented fields.
type Scan struct {
	ID          string
	Status      string
	Cached      bool
	FromStore   bool // answered by the local state store, with no request
	HTTPStatus  int
	RequestID   string
	JSON        string                 // the scan object as received
	Fields      map[string]interface{} // the same, decoded
	Risk        RiskAssessment
	CompanyName string
}

// RiskAssessment is result.risk_assessment.
type RiskAssessment struct {
	OverallRiskLevel   string    `json:"overall_risk_level"`
	AIIntensity        Dimension `json:"ai_intensity"`
	Autonomy           Dimension `json:"autonomy"`
	DomainRisk         Dimension `json:"domain_risk"`
	BlastRadius        Dimension `json:"blast_radius"`
	DataContentIPRisk  Dimension `json:"data_content_ip_risk"`
	ControlGovernance  Dimension `json:"control_governance"`
	RegulatoryExposure string    `json:"regulatory_exposure"`
}

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// take copies a C result into Go values and frees it.
func take(r *C.exona_result) (*Scan, error) {
	defer C.exona_result_free(r)
	code := Code(C.exona_result_code(r))
	var scan *Scan
	if js := C.exona_result_json(r); js != nil {
		scan = &Scan{
			ID:         goString(C.exona_result_scan_id(r)),
			Cached:     bool(C.exona_result_cached(r)),
			FromStore:  bool(C.exona_result_from_store(r)),
			HTTPStatus: int(C.exona_result_http_status(r)),
			RequestID:  goString(C.exona_result_request_id(r)),
			JSON:       C.GoString(js),
		}
		var doc struct {
			Status  string `json:"status"`
			Company struct {
				Name string `json:"name"`
			} `json:"company"`
			Result struct {
				Risk RiskAssessment `json:"risk_assessment"`
			} `json:"result"`
		}
		_ = json.Unmarshal([]byte(scan.JSON), &doc)
		_ = json.Unmarshal([]byte(scan.JSON), &scan.Fields)
		scan.Status, scan.Risk, scan.CompanyName = doc.Status, doc.Result.Risk, doc.Company.Name
	}
	if code == CodeOK {
		return scan, nil
	}
	return scan, &Error{
		Code:       code,
		Message:    goString(C.exona_result_message(r)),
		HTTPStatus: int(C.exona_result_http_status(r)),
		APICode:    goString(C.exona_result_error_code(r)),
		Hint:       goString(C.exona_result_hint(r)),
		Param:      goString(C.exona_result_param(r)),
		RequestID:  goString(C.exona_result_request_id(r)),
		ScanID:     goString(C.exona_result_scan_id(r)),
		RetryAfter: time.Duration(C.exona_result_retry_after_ms(r)) * time.Millisecond,
	}
}

// Client is a client of the Exona API, safe for concurrent use. Close it when done; a
// finalizer closes a forgotten one.
//
// A client made before fork() works in the child (the library gives the child an engine and
// connections of its own on its first call); Go programs rarely fork without exec, but a cgo
// host may.
type Client struct {
	mu sync.RWMutex
	c  *C.exona_client
	// closing is closed by Close: every call in flight cancels its token when it is.
	closing   chan struct{}
	closeOnce sync.Once
}

// closedMessage is what a call made on a closed client, or cancelled by Close, says.
const closedMessage = "the client is closed: its calls were cancelled, and it takes no new ones"

// cString copies s for C. A C string ends at its first NUL, so a Go string holding one
// would reach the library cut short ("https://a.example\x00.evil" would scan
// https://a.example): it is refused, naming what, and nothing is sent. The caller frees the
// copy with C.free.
func cString(s, what string) (*C.char, error) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return nil, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(
			"%s contains a NUL byte (at index %d); C strings cannot carry one, and cutting the string there would name something else, so nothing was sent", what, i)}
	}
	return C.CString(s), nil
}

// cStringOrNil is cString with "" as NULL (the library's default).
func cStringOrNil(s, what string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return cString(s, what)
}

// NewClient makes a client. An empty apiKey reads EXONA_API_KEY; an empty baseURL reads
// EXONA_BASE_URL, else the production URL. A string holding a NUL byte is refused
// (CodeInvalidArgument).
func NewClient(apiKey, baseURL string) (*Client, error) {
	k, err := cStringOrNil(apiKey, "apiKey")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(k))
	u, err := cStringOrNil(baseURL, "baseURL")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(u))
	var c *C.exona_client
	var r *C.exona_result
	if C.exona_client_create(k, u, &c, &r) != C.EXONA_OK {
		_, err := take(r)
		return nil, err
	}
	return wrapClient(c), nil
}

func wrapClient(c *C.exona_client) *Client {
	client := &Client{c: c, closing: make(chan struct{})}
	runtime.SetFinalizer(client, (*Client).Close)
	return client
}

// Close cancels the calls still running on the client (from any goroutine; each returns an
// *Error with CodeCancelled, keeping the scan id of a scan already created), waits for them
// to return, and frees the client. Later calls return CodeCancelled. Safe to call twice.
func (c *Client) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		C.exona_client_free(c.c)
		c.c = nil
	}
}

// PollMode trades requests against how soon completion is noticed. Its zero value,
// DefaultMode, keeps the client's mode (for Options) or the library's (for Settings), which is
// Adaptive.
type PollMode int

const (
	DefaultMode PollMode = iota
	// Adaptive polls like Latency while the key's window has requests to spare, moving toward
	// Frugal as it tightens.
	Adaptive
	Balanced
	Latency
	Frugal
)

// setPollMode applies m through set (the scan's or the client's setter); DefaultMode sets
// nothing.
func setPollMode(m PollMode, set func(C.int) C.exona_code) bool {
	var c C.int
	switch m {
	case DefaultMode:
		return true
	case Adaptive:
		c = C.EXONA_POLL_ADAPTIVE
	case Balanced:
		c = C.EXONA_POLL_BALANCED
	case Latency:
		c = C.EXONA_POLL_LATENCY
	case Frugal:
		c = C.EXONA_POLL_FRUGAL
	default:
		return false
	}
	return set(c) == C.EXONA_OK
}

// Question is one questionnaire item.
type Question struct{ Question, Answer string }

// Options are the optional parts of a scan request and the limits of its wait.
type Options struct {
	MaxAgeDays            int // 0: always a new scan; 1–365: reuse a completed scan that recent
	ForceRefresh          bool
	IncludeFieldCitations bool
	Questionnaire         []Question
	Timeout               time.Duration // 0: the library's default (300 s); also bounded by the context
	Mode                  PollMode      // DefaultMode: the client's
	// Thrift, when set (0 to 1), fixes how thrifty the call's polling is whatever the key's
	// window: 0 polls like Latency, 1 like Frugal; it wins over Mode (see
	// exona_scan_options_set_thrift_permille and docs/waiting.md's curve). nil: Mode decides.
	Thrift *float64
	// Progress, when set, is called on the calling goroutine before every wait of ScanAndWait
	// and Wait; returning false cancels the call (it then fails with ErrCancelled and keeps
	// the scan id).
	Progress func(Progress) bool
}

// callOptions builds C options from o and ctx: the context's deadline bounds the wait, and
// its cancellation cancels the call through a token. The returned func releases everything.
// callOptions builds a call's options; its token is cancelled when ctx is done or when
// closing (nil: never) is closed.
func callOptions(ctx context.Context, o *Options, closing <-chan struct{}) (*C.exona_scan_options, func(), error) {
	opts := C.exona_scan_options_new()
	token := C.exona_cancel_new()
	release := func() {
		C.exona_scan_options_free(opts)
		C.exona_cancel_free(token)
	}
	bad := func(what string) (*C.exona_scan_options, func(), error) {
		release()
		return nil, func() {}, &Error{Code: CodeInvalidArgument, Message: what}
	}
	if o == nil {
		o = &Options{}
	}
	if o.MaxAgeDays != 0 {
		if o.MaxAgeDays < 0 || o.MaxAgeDays > 365 || C.exona_scan_options_set_max_age_days(opts, C.uint32_t(o.MaxAgeDays)) != C.EXONA_OK {
			return bad(fmt.Sprintf("max_age_days is %d: it must be between 0 and 365", o.MaxAgeDays))
		}
	}
	C.exona_scan_options_set_force_refresh(opts, C.bool(o.ForceRefresh))
	C.exona_scan_options_set_include_field_citations(opts, C.bool(o.IncludeFieldCitations))
	for i, q := range o.Questionnaire {
		if strings.IndexByte(q.Question, 0) >= 0 || strings.IndexByte(q.Answer, 0) >= 0 {
			return bad(fmt.Sprintf("questionnaire item %d contains a NUL byte; C strings cannot carry one, and cutting the string there would change it, so nothing was sent", i+1))
		}
		qs, as := C.CString(q.Question), C.CString(q.Answer)
		rc := C.exona_scan_options_add_question(opts, qs, as)
		C.free(unsafe.Pointer(qs))
		C.free(unsafe.Pointer(as))
		if rc != C.EXONA_OK {
			return bad(fmt.Sprintf("questionnaire item %d is over the documented limits (50 items, 5000 characters per answer)", i+1))
		}
	}
	if !setPollMode(o.Mode, func(m C.int) C.exona_code { return C.exona_scan_options_set_poll_mode(opts, m) }) {
		return bad(fmt.Sprintf("poll mode %d is not a PollMode", o.Mode))
	}
	if o.Thrift != nil {
		t := *o.Thrift
		if !(t >= 0 && t <= 1) {
			return bad(fmt.Sprintf("thrift is %v: it must be between 0 and 1", t))
		}
		C.exona_scan_options_set_thrift_permille(opts, C.int(math.Round(t*1000)))
	}
	timeout := o.Timeout
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return bad("the context's deadline has passed")
		}
		if timeout == 0 || left < timeout {
			timeout = left
		}
	}
	if timeout > 0 {
		ms := uint64(timeout / time.Millisecond)
		if ms == 0 {
			ms = 1
		}
		C.exona_scan_options_set_timeout_ms(opts, C.uint64_t(ms))
	}
	C.exona_scan_options_set_cancel(opts, token)
	var progress *progressHandle
	if o.Progress != nil {
		progress = newProgressHandle(o.Progress)
		C.exona_scan_options_set_progress(opts, progressFn(), progress.cell)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			C.exona_cancel(token)
		case <-closing:
			C.exona_cancel(token)
		case <-done:
		}
	}()
	return opts, func() {
		close(done)
		wg.Wait()
		release()
		if progress != nil {
			progress.release()
		}
	}, nil
}

func (c *Client) call(ctx context.Context, o *Options, f func(*C.exona_client, *C.exona_scan_options, **C.exona_result)) (*Scan, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return nil, &Error{Code: CodeCancelled, Message: closedMessage}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Code: CodeCancelled, Message: err.Error()}
	}
	opts, release, err := callOptions(ctx, o, c.closing)
	if err != nil {
		return nil, err
	}
	defer release()
	var r *C.exona_result
	f(c.c, opts, &r)
	return take(r)
}

// ScanAndWait creates a scan and waits until it completes or fails, the deadline (from opts
// or ctx) passes, or ctx is cancelled. On failure the *Error carries the scan id whenever a
// scan exists.
func (c *Client) ScanAndWait(ctx context.Context, companyName, companyWebsite string, opts *Options) (*Scan, error) {
	n, w, err := company(companyName, companyWebsite)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(n))
	defer C.free(unsafe.Pointer(w))
	return c.call(ctx, opts, func(cl *C.exona_client, o *C.exona_scan_options, r **C.exona_result) {
		C.exona_scan_and_wait(cl, n, w, o, r)
	})
}

// Create creates a scan and returns at once (status "processing", or a cached "completed").
func (c *Client) Create(ctx context.Context, companyName, companyWebsite string, opts *Options) (*Scan, error) {
	n, w, err := company(companyName, companyWebsite)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(n))
	defer C.free(unsafe.Pointer(w))
	return c.call(ctx, opts, func(cl *C.exona_client, o *C.exona_scan_options, r **C.exona_result) {
		C.exona_scan_create(cl, n, w, o, r)
	})
}

// Get fetches a scan once, whatever its status.
func (c *Client) Get(ctx context.Context, scanID string) (*Scan, error) {
	id, err := cString(scanID, "scanID")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(id))
	return c.call(ctx, nil, func(cl *C.exona_client, _ *C.exona_scan_options, r **C.exona_result) {
		C.exona_scan_get(cl, id, r)
	})
}

// Wait waits for an existing scan, with no new POST: how a program resumes a scan.
func (c *Client) Wait(ctx context.Context, scanID string, opts *Options) (*Scan, error) {
	id, err := cString(scanID, "scanID")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(id))
	return c.call(ctx, opts, func(cl *C.exona_client, o *C.exona_scan_options, r **C.exona_result) {
		C.exona_scan_wait(cl, id, o, r)
	})
}

// company copies a company's name and website for C (both freed by the caller), or refuses
// them (nothing allocated).
func company(name, website string) (*C.char, *C.char, error) {
	n, err := cString(name, "companyName")
	if err != nil {
		return nil, nil, err
	}
	w, err := cString(website, "companyWebsite")
	if err != nil {
		C.free(unsafe.Pointer(n))
		return nil, nil, err
	}
	return n, w, nil
}

// Batch runs many scans at once on one client. Every added request ends with exactly one
// result. Safe for concurrent use; Close it when done (running scans are cancelled).
type Batch struct {
	mu sync.RWMutex // Close takes it for writing; every other method for reading
	b  *C.exona_batch
}

// NewBatch makes an empty batch on c.
func (c *Client) NewBatch() *Batch {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b := &Batch{b: C.exona_batch_new(c.c)}
	runtime.SetFinalizer(b, (*Batch).Close)
	return b
}

// Add adds a scan of a company and returns its index (0, 1, 2, ... in order of addition).
// Only Timeout, Mode and the request fields of opts apply.
func (b *Batch) Add(companyName, companyWebsite string, opts *Options) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.b == nil {
		return -1, &Error{Code: CodeInvalidArgument, Message: "the batch is closed"}
	}
	n, w, err := company(companyName, companyWebsite)
	if err != nil {
		return -1, err
	}
	o, release, err := callOptions(context.Background(), opts, nil)
	if err != nil {
		C.free(unsafe.Pointer(n))
		C.free(unsafe.Pointer(w))
		return -1, err
	}
	defer release()
	defer C.free(unsafe.Pointer(n))
	defer C.free(unsafe.Pointer(w))
	var index C.size_t
	if rc := C.exona_batch_add(b.b, n, w, o, &index); rc != C.EXONA_OK {
		return -1, &Error{Code: Code(rc), Message: "the request could not be added"}
	}
	return int(index), nil
}

// Item is one finished request of a batch.
type Item struct {
	Index int
	Scan  *Scan // the scan object, when there is one (also on some failures)
	Err   error // nil when the scan completed
}

// Next waits for the next finished request. ok is false when every result has been
// collected. ctx bounds the wait (cancelling it does not cancel the scans: see CancelAll).
func (b *Batch) Next(ctx context.Context) (item Item, ok bool, err error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.b == nil {
		return Item{}, false, &Error{Code: CodeInvalidArgument, Message: "the batch is closed"}
	}
	for {
		if err := ctx.Err(); err != nil {
			return Item{}, true, &Error{Code: CodeCancelled, Message: err.Error()}
		}
		var r *C.exona_result
		rc := C.exona_batch_next(b.b, 100, &r) // short slices, so ctx is honoured promptly
		switch Code(rc) {
		case CodeOK:
			index := int(C.exona_result_index(r))
			scan, scanErr := take(r)
			return Item{Index: index, Scan: scan, Err: scanErr}, true, nil
		case CodeTimeout:
			continue
		case CodeNotFound:
			return Item{}, false, nil
		default:
			return Item{}, false, &Error{Code: Code(rc), Message: "exona_batch_next failed"}
		}
	}
}

// SetJournal journals the batch's rows in the SQLite file at path, before the first Add: a
// batch made again on the same journal, with the same rows added in the same order, resumes
// (finished rows cost no request, created rows are waited for by id, no company is created
// twice). A row whose create was sent but not answered before the process stopped ends with
// CodeAmbiguousCreate unless reconcile is on (it is then created again with MaxAgeDays, so a
// completed twin is returned instead of a new scan).
func (b *Batch) SetJournal(path string, reconcile bool) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.b == nil {
		return &Error{Code: CodeInvalidArgument, Message: "the batch is closed"}
	}
	p, err := cString(path, "the journal's path")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(p))
	if rc := C.exona_batch_set_journal(b.b, p); rc != C.EXONA_OK {
		return &Error{Code: Code(rc), Message: fmt.Sprintf("%s cannot be used as the batch's journal (set before the first Add; EXONA_LOG=warn says why)", path)}
	}
	on := C.int(0)
	if reconcile {
		on = 1
	}
	C.exona_batch_set_reconcile(b.b, on)
	return nil
}

// BatchStatus is where a batch stands.
type BatchStatus struct {
	Queued, InFlight, Completed, Failed int
	Requests                            uint64        // sent on the key by this process since the batch began
	BudgetLeft                          uint32        // requests the key's budget allows now
	ETA                                 time.Duration // until the last row should end; -1 when unknown
}

// Status says where the batch stands: counts, requests used, budget left, an estimate of the end.
func (b *Batch) Status() BatchStatus {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var s C.exona_batch_status
	if b.b == nil || C.exona_batch_get_status(b.b, &s) != C.EXONA_OK {
		return BatchStatus{ETA: -1}
	}
	eta := time.Duration(-1)
	if s.eta_seconds >= 0 {
		eta = time.Duration(float64(s.eta_seconds) * float64(time.Second))
	}
	return BatchStatus{
		Queued: int(s.queued), InFlight: int(s.in_flight), Completed: int(s.completed), Failed: int(s.failed),
		Requests: uint64(s.requests), BudgetLeft: uint32(s.budget_left), ETA: eta,
	}
}

// Counts says how many requests are queued, in flight and done.
func (b *Batch) Counts() (queued, inFlight, done int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var q, f, d C.size_t
	C.exona_batch_counts(b.b, &q, &f, &d)
	return int(q), int(f), int(d)
}

// Cancel cancels one request; CancelAll cancels every running one.
func (b *Batch) Cancel(index int) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if index < 0 || C.exona_batch_cancel(b.b, C.size_t(index)) != C.EXONA_OK {
		return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("index %d was never added", index)}
	}
	return nil
}

func (b *Batch) CancelAll() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	C.exona_batch_cancel_all(b.b)
}

// Close cancels what still runs and frees the batch. Safe to call twice.
func (b *Batch) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b != nil {
		C.exona_batch_free(b.b)
		b.b = nil
	}
}

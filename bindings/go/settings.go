package exona

/*
#include <stdlib.h>
#include "exona.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// ClientSettings are a client's settings beyond its key and URL. Zero values keep the
// library's defaults (and the environment's: EXONA_SCAN_DURATION_MS, EXONA_CA_BUNDLE, the
// proxy variables).
type ClientSettings struct {
	ConnectTimeout  time.Duration // opening a connection (default 10 s)
	AttemptTimeout  time.Duration // one HTTP exchange (default 30 s)
	UserAgentSuffix string        // appended to "libexona/VERSION"
	Proxy           string        // a proxy URL for every request
	NoProxy         bool          // no proxy at all, whatever the environment says
	CABundleFile    string        // PEM certificates to trust besides the system's
	Mode            PollMode      // the client's default poll mode (DefaultMode: Adaptive)
	// The expected scan duration (no poll before its minimum): both zero keeps the default.
	ExpectedMin, ExpectedMax time.Duration
	// StateDir is the state store's directory, shared by the processes of the host (learned
	// durations, stored results, scans in flight); "off" turns it off; empty keeps
	// EXONA_STATE_DIR (unset: no store).
	StateDir string
	// StateURL is the fleet store: a postgresql:// URL shared by the hosts of a fleet on one
	// key, in place of StateDir's file; "off" turns it off; empty keeps EXONA_STATE_URL. Its
	// password never appears in an error or a log line.
	StateURL string
}

// NewClientWith makes a client with settings. An empty apiKey reads EXONA_API_KEY; an empty
// baseURL reads EXONA_BASE_URL, else the production URL. A setting the library refuses is
// an *Error with CodeInvalidArgument naming it.
func NewClientWith(apiKey, baseURL string, s *ClientSettings) (*Client, error) {
	if s == nil {
		return NewClient(apiKey, baseURL)
	}
	o := C.exona_client_options_new()
	defer C.exona_client_options_free(o)
	invalid := func(what string) error { return &Error{Code: CodeInvalidArgument, Message: what} }
	ms := func(d time.Duration) C.uint64_t { return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond) }
	if s.ConnectTimeout > 0 && C.exona_client_options_set_connect_timeout_ms(o, ms(s.ConnectTimeout)) != C.EXONA_OK {
		return nil, invalid("ConnectTimeout is refused")
	}
	if s.AttemptTimeout > 0 && C.exona_client_options_set_attempt_timeout_ms(o, ms(s.AttemptTimeout)) != C.EXONA_OK {
		return nil, invalid("AttemptTimeout is refused")
	}
	setString := func(v string, set func(*C.char) C.exona_code, name string) error {
		if v == "" {
			return nil
		}
		if strings.IndexByte(v, 0) >= 0 {
			return invalid(fmt.Sprintf("%s contains a NUL byte; C strings cannot carry one, and cutting the string there would name something else, so nothing was sent", name))
		}
		cs := C.CString(v)
		defer C.free(unsafe.Pointer(cs))
		if set(cs) != C.EXONA_OK {
			// A URL may carry credentials (user:password@): it is named, never repeated.
			if strings.Contains(v, "@") {
				return invalid(fmt.Sprintf("%s is refused (its value is not shown: it may hold a password)", name))
			}
			return invalid(fmt.Sprintf("%s %q is refused", name, v))
		}
		return nil
	}
	if err := setString(s.UserAgentSuffix, func(v *C.char) C.exona_code { return C.exona_client_options_set_user_agent_suffix(o, v) }, "UserAgentSuffix"); err != nil {
		return nil, err
	}
	proxy := s.Proxy
	if s.NoProxy {
		empty := C.CString("")
		rc := C.exona_client_options_set_proxy(o, empty)
		C.free(unsafe.Pointer(empty))
		if rc != C.EXONA_OK {
			return nil, invalid("NoProxy is refused")
		}
		proxy = ""
	}
	if err := setString(proxy, func(v *C.char) C.exona_code { return C.exona_client_options_set_proxy(o, v) }, "Proxy"); err != nil {
		return nil, err
	}
	if err := setString(s.CABundleFile, func(v *C.char) C.exona_code { return C.exona_client_options_set_ca_bundle_file(o, v) }, "CABundleFile (a readable PEM file)"); err != nil {
		return nil, err
	}
	if err := setString(s.StateDir, func(v *C.char) C.exona_code { return C.exona_client_options_set_state_dir(o, v) }, "StateDir"); err != nil {
		return nil, err
	}
	if err := setString(s.StateURL, func(v *C.char) C.exona_code { return C.exona_client_options_set_state_url(o, v) }, "StateURL (a postgresql:// URL)"); err != nil {
		return nil, err
	}
	if !setPollMode(s.Mode, func(m C.int) C.exona_code { return C.exona_client_options_set_poll_mode(o, m) }) {
		return nil, invalid(fmt.Sprintf("poll mode %d is not a PollMode", s.Mode))
	}
	if s.ExpectedMin > 0 || s.ExpectedMax > 0 {
		if C.exona_client_options_set_expected_duration_ms(o, ms(s.ExpectedMin), ms(s.ExpectedMax)) != C.EXONA_OK {
			return nil, invalid("ExpectedMin/ExpectedMax are refused (both positive, min <= max)")
		}
	}
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
	if C.exona_client_create_with_options(k, u, o, &c, &r) != C.EXONA_OK {
		_, err := take(r)
		return nil, err
	}
	return wrapClient(c), nil
}

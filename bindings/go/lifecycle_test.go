package exona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// simRequests is how many requests the simulator has seen from key (GET /_sim/stats).
func simRequests(t *testing.T, key string) int {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(baseURL, "/api/v1") + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows map[string]struct{ Posts, Gets int }
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	total := 0
	for masked, r := range rows {
		// The simulator names a key by its first 9 and last 4 characters.
		if strings.HasPrefix(masked, key[:9]+"…"+key[len(key)-4:]) {
			total += r.Posts + r.Gets
		}
	}
	return total
}

// DESIGN.md 9.2: a NUL cannot cross into C, and cutting the string there would scan another
// website: every string is refused, naming which, and nothing is sent.
func TestNULIsRefusedAndNothingIsSent(t *testing.T) {
	key := fmt.Sprintf("exo_test_%036d", 9101)
	c, err := NewClient(key, baseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	calls := map[string]func() error{
		"companyName": func() error { _, err := c.ScanAndWait(ctx, "Acme\x00Evil", "https://acme.ai", nil); return err },
		"companyWebsite": func() error {
			_, err := c.Create(ctx, "Acme", "https://nul2.example\x00.evil", nil)
			return err
		},
		"scanID": func() error { _, err := c.Get(ctx, "scn_test_1\x00"); return err },
		"questionnaire": func() error {
			_, err := c.ScanAndWait(ctx, "Acme", "https://acme.ai",
				&Options{Questionnaire: []Question{{Question: "Q\x00", Answer: "a"}}})
			return err
		},
		"baseURL": func() error { _, err := NewClient(key, baseURL+"\x00x"); return err },
		"StateDir": func() error {
			_, err := NewClientWith(key, baseURL, &ClientSettings{StateDir: t.TempDir() + "/x\x00y"})
			return err
		},
	}
	batch := c.NewBatch()
	defer batch.Close()
	calls["batch companyWebsite"] = func() error { _, err := batch.Add("Evil", "https://nul4.example\x00.evil", nil); return err }
	for what, call := range calls {
		err := call()
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidArgument || !strings.Contains(e.Message, "NUL") {
			t.Errorf("%s: want CodeInvalidArgument naming the NUL, got %v", what, err)
		}
	}
	if n := simRequests(t, key); n != 0 {
		t.Fatalf("%d requests were sent", n)
	}
}

// Closing a client while goroutines are inside calls ends them with CodeCancelled (not
// after their 300 s deadline), and later calls say the client is closed.
func TestCloseCancelsCallsInFlight(t *testing.T) {
	c, err := NewClient(fmt.Sprintf("exo_test_%036d", 9102), baseURL)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// A scan that never ends: only the close can end the call before its deadline.
			_, err := c.ScanAndWait(context.Background(), "Stuck", fmt.Sprintf("https://stuck.go-%d.example", i), nil)
			errs <- err
		}(i)
	}
	time.Sleep(300 * time.Millisecond)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		t.Fatal("Close did not return: it waited for the calls instead of cancelling them")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeCancelled {
			t.Errorf("want CodeCancelled, got %v", err)
		}
	}
	_, err = c.Get(context.Background(), "scn_test_x")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCancelled || !strings.Contains(e.Message, "closed") {
		t.Fatalf("a call after Close: %v", err)
	}
	c.Close() // twice is harmless
}

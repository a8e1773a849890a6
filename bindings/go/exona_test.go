package exona

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var baseURL string

// A well-shaped key that the simulator answers with 401 INVALID_API_KEY.
const revokedKey = "exo_test_revoked00000000000000000000000000000"

// TestMain starts exona-sim (EXONA_SIM_BIN, else the repository's build) on a free port.
func TestMain(m *testing.M) {
	bin := os.Getenv("EXONA_SIM_BIN")
	if bin == "" {
		for _, p := range []string{"../../target/release/exona-sim", "../../target/debug/exona-sim"} {
			if _, err := os.Stat(p); err == nil {
				bin, _ = filepath.Abs(p)
				break
			}
		}
	}
	if bin == "" {
		fmt.Fprintln(os.Stderr, "exona-sim not built: run cargo build -p exona-sim")
		os.Exit(1)
	}
	sim := exec.Command(bin, "--scan-min", "0.05", "--scan-max", "0.15", "--retry-after", "0.05",
		"--rate-limit", "100000", "--exit-after", "300", "--revoked-key", revokedKey)
	out, err := sim.StdoutPipe()
	if err != nil {
		panic(err)
	}
	if err := sim.Start(); err != nil {
		panic(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		panic(err)
	}
	baseURL = strings.TrimSpace(line)
	os.Setenv("EXONA_SCAN_DURATION_MS", "50-150")
	code := m.Run()
	_ = sim.Process.Kill()
	_, _ = sim.Process.Wait()
	os.Exit(code)
}

func newClient(t *testing.T, n int) *Client {
	t.Helper()
	key := fmt.Sprintf("exo_test_%036d", n)
	c, err := NewClient(key, baseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestScanAndWaitCompletes(t *testing.T) {
	c := newClient(t, 1)
	scan, err := c.ScanAndWait(context.Background(), "Acme AI Ltd", "https://acme.ai", nil)
	if err != nil {
		t.Fatal(err)
	}
	if scan.Status != "completed" || !strings.HasPrefix(scan.ID, "scn_test_") {
		t.Fatalf("unexpected scan %+v", scan)
	}
	switch scan.Risk.OverallRiskLevel {
	case "Low", "Medium", "High", "Very High":
	default:
		t.Fatalf("overall risk level %q", scan.Risk.OverallRiskLevel)
	}
	if scan.Risk.AIIntensity.Label == "" || scan.CompanyName != "Acme AI Ltd" || scan.Fields["result"] == nil {
		t.Fatalf("typed fields missing: %+v", scan)
	}
}

func TestCacheHitAndCreateGetWait(t *testing.T) {
	c := newClient(t, 2)
	ctx := context.Background()
	created, err := c.Create(ctx, "Acme", "https://cache.example", nil)
	if err != nil || created.Status != "processing" || created.HTTPStatus != 201 {
		t.Fatalf("create: %+v %v", created, err)
	}
	got, err := c.Get(ctx, created.ID)
	if err != nil || got.ID != created.ID {
		t.Fatalf("get: %+v %v", got, err)
	}
	done, err := c.Wait(ctx, created.ID, nil)
	if err != nil || done.Status != "completed" {
		t.Fatalf("wait: %+v %v", done, err)
	}
	hit, err := c.ScanAndWait(ctx, "Acme", "https://cache.example", &Options{MaxAgeDays: 30})
	if err != nil || !hit.Cached || hit.ID != created.ID {
		t.Fatalf("cache hit: %+v %v", hit, err)
	}
}

func TestTypedErrors(t *testing.T) {
	c := newClient(t, 3)
	ctx := context.Background()
	_, err := c.ScanAndWait(ctx, "Acme", "http://acme.ai", nil)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
	_, err = c.ScanAndWait(ctx, "Gone", "https://gone.invalid", nil)
	var e *Error
	if !errors.Is(err, ErrScanFailed) || !errors.As(err, &e) || e.ScanID == "" || e.APICode != "WEBSITE_UNREACHABLE" || e.RequestID == "" {
		t.Fatalf("want a failed scan with its id, got %#v", err)
	}
	// A key of the wrong shape is refused before any request.
	if _, err := NewClient("exo_test_bad", baseURL); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a key of the wrong shape must be refused, got %v", err)
	}
	// A well-shaped key the server refuses (revoked): its 401.
	bad, err := NewClient(revokedKey, baseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.ScanAndWait(ctx, "Acme", "https://acme.ai", nil)
	if !errors.As(err, &e) || e.Code != CodeAuthentication || e.APICode != "INVALID_API_KEY" {
		t.Fatalf("want an authentication error, got %v", err)
	}
	if _, err := NewClient("", "http://example.com/api/v1"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("plain http to a remote host must be refused, got %v", err)
	}
	if CodeTimeout.String() != "EXONA_ERR_TIMEOUT" {
		t.Fatal(CodeTimeout.String())
	}
}

func TestContextCancelReturnsPromptlyWithTheScanID(t *testing.T) {
	c := newClient(t, 4)
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	started := time.Now()
	_, err := c.ScanAndWait(ctx, "Stuck", "https://stuck.acme.ai", nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCancelled || e.ScanID == "" {
		t.Fatalf("want a cancelled scan with its id, got %v", err)
	}
	// The stuck scan never ends and the default deadline is 300 s: returning well before it
	// can only be the cancel's doing. (How fast a cancel returns is measured by the cancel
	// latency benchmark, not asserted here, where -race and a loaded machine slow everything.)
	if waited := time.Since(started); waited > 60*time.Second {
		t.Fatalf("cancelling took %v", waited)
	}
	// The goroutine that watched the context is gone too.
	for i := 0; i < 100 && runtime.NumGoroutine() > goroutines; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Fatalf("%d goroutines after the call, %d before", n, goroutines)
	}
}

func TestContextDeadlineBoundsTheWait(t *testing.T) {
	c := newClient(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := c.ScanAndWait(ctx, "Stuck", "https://stuck.acme.ai", nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout || e.ScanID == "" {
		t.Fatalf("want a timeout with the scan id, got %v", err)
	}
}

func TestConcurrentCallsShareOneClient(t *testing.T) {
	c := newClient(t, 6)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.ScanAndWait(context.Background(), "Co", fmt.Sprintf("https://go-%d.example", i), nil)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatch(t *testing.T) {
	c := newClient(t, 7)
	b := c.NewBatch()
	defer b.Close()
	for i := 0; i < 30; i++ {
		site := fmt.Sprintf("https://batch-%d.example", i)
		if i == 5 {
			site = "https://gone.invalid"
		}
		index, err := b.Add(fmt.Sprintf("Co %d", i), site, nil)
		if err != nil || index != i {
			t.Fatalf("add %d: %d %v", i, index, err)
		}
	}
	seen := map[int]bool{}
	for {
		item, ok, err := b.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if seen[item.Index] {
			t.Fatalf("index %d twice", item.Index)
		}
		seen[item.Index] = true
		if (item.Index == 5) != (item.Err != nil) {
			t.Fatalf("item %d: %v", item.Index, item.Err)
		}
	}
	if len(seen) != 30 {
		t.Fatalf("%d results for 30 requests", len(seen))
	}
	if q, f, d := b.Counts(); q != 0 || f != 0 || d != 30 {
		t.Fatalf("counts %d %d %d", q, f, d)
	}
}

// A journaled batch run twice: the second run hands every row back with no new scan.
func TestBatchJournalResumes(t *testing.T) {
	c := newClient(t, 41)
	journal := filepath.Join(t.TempDir(), "rows.journal")
	run := func() (ids []string) {
		b := c.NewBatch()
		defer b.Close()
		if err := b.SetJournal(journal, false); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := b.Add("Co", fmt.Sprintf("https://journal-%d.example", i), nil); err != nil {
				t.Fatal(err)
			}
		}
		for {
			item, ok, err := b.Next(context.Background())
			if err != nil || !ok {
				break
			}
			if item.Err != nil {
				t.Fatal(item.Err)
			}
			ids = append(ids, item.Scan.ID)
		}
		if s := b.Status(); s.Completed != 3 || s.Queued != 0 || s.Failed != 0 {
			t.Fatalf("status %+v", s)
		}
		return ids
	}
	first, second := run(), run()
	sort.Strings(first)
	sort.Strings(second)
	if len(second) != 3 || strings.Join(first, ",") != strings.Join(second, ",") {
		t.Fatalf("the second run was not the first one's rows: %v then %v", first, second)
	}
	late := c.NewBatch()
	defer late.Close()
	late.Add("Co", "https://late.example", nil)
	if err := late.SetJournal(journal, false); err == nil {
		t.Fatal("a journal set after Add was accepted")
	}
}

func TestProgressCallbackReportsWaitsAndCanCancel(t *testing.T) {
	c := newClient(t, 40)
	var events []Progress
	scan, err := c.ScanAndWait(context.Background(), "Acme", "https://progress.example", &Options{
		Progress: func(p Progress) bool { events = append(events, p); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, e := range events {
		seen = seen || (e.ScanID == scan.ID && e.RequestsUsed >= 1)
	}
	if !seen {
		t.Fatalf("no progress event named the scan: %+v", events)
	}
	// The default mode is adaptive: each wait says its regime and thrift.
	for _, e := range events {
		if e.ScanID == "" {
			continue
		}
		if e.Regime != Adaptive && e.Regime != Latency && e.Regime != Frugal || e.Thrift < 0 || e.Thrift > 1 {
			t.Fatalf("an adaptive wait reported regime %v, thrift %v", e.Regime, e.Thrift)
		}
	}
	// Returning false from the callback cancels the call; the scan id is kept.
	_, err = c.ScanAndWait(context.Background(), "Stuck", "https://stuck.progress.example", &Options{
		Progress: func(p Progress) bool { return p.ScanID == "" },
	})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCancelled || e.ScanID == "" {
		t.Fatalf("want a cancel with the scan id, got %v", err)
	}
}

func TestClientSettingsApplyAndAreChecked(t *testing.T) {
	key := fmt.Sprintf("exo_test_%036d", 41)
	c, err := NewClientWith(key, baseURL, &ClientSettings{
		AttemptTimeout:  5 * time.Second,
		ConnectTimeout:  2 * time.Second,
		UserAgentSuffix: "go-test/1",
		NoProxy:         true,
		Mode:            Frugal,
		ExpectedMin:     50 * time.Millisecond,
		ExpectedMax:     150 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Options with no Mode keep the client's (a zero Mode used to force balanced).
	var regimes []PollMode
	opts := &Options{Progress: func(p Progress) bool { regimes = append(regimes, p.Regime); return true }}
	if _, err := c.ScanAndWait(context.Background(), "Acme", "https://settings.example", opts); err != nil {
		t.Fatal(err)
	}
	for _, r := range regimes {
		if r != Frugal {
			t.Fatalf("the client's frugal mode was overridden: regimes %v", regimes)
		}
	}
	// A fixed thrift wins over the client's mode; one outside 0..1 is refused.
	half := 0.5
	var planned []Progress
	opts = &Options{Thrift: &half, Progress: func(p Progress) bool { planned = append(planned, p); return true }}
	if _, err := c.ScanAndWait(context.Background(), "Acme", "https://thrift.settings.example", opts); err != nil {
		t.Fatal(err)
	}
	polls := 0
	for _, p := range planned {
		if p.ScanID != "" {
			polls++
			if p.Regime != Adaptive || p.Thrift != 0.5 {
				t.Fatalf("a wait at thrift 0.5 reported regime %v, thrift %v", p.Regime, p.Thrift)
			}
		}
	}
	if polls == 0 {
		t.Fatalf("no wait of the scan was reported: %+v", planned)
	}
	tooMuch := 1.5
	if _, err := c.ScanAndWait(context.Background(), "Acme", "https://thrift.settings.example", &Options{Thrift: &tooMuch}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("thrift 1.5 must be refused, got %v", err)
	}
	if _, err := NewClientWith(key, baseURL, &ClientSettings{CABundleFile: "/nonexistent/ca.pem"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("an unreadable CA bundle must be refused, got %v", err)
	}
	if _, err := NewClientWith(key, baseURL, &ClientSettings{ExpectedMin: 2 * time.Second, ExpectedMax: time.Second}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("min above max must be refused, got %v", err)
	}
}

func TestStateURLIsCheckedWithoutShowingItsPassword(t *testing.T) {
	key := fmt.Sprintf("exo_test_%036d", 43)
	_, err := NewClientWith(key, baseURL, &ClientSettings{StateURL: "mysql://u:go-secret-pw@h/x"})
	if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), "go-secret-pw") {
		t.Fatalf("a URL that is not postgresql:// must be refused without its password: %v", err)
	}
	// A postgresql:// URL makes a client: the database is reached on first use.
	c, err := NewClientWith(key, baseURL, &ClientSettings{StateURL: "postgresql://u:pw@127.0.0.1:1/x"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestStateDirAnswersARepeatedScanWithNoRequest(t *testing.T) {
	dir := t.TempDir()
	key := fmt.Sprintf("exo_test_%036d", 42)
	ctx := context.Background()
	a, err := NewClientWith(key, baseURL, &ClientSettings{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	first, err := a.ScanAndWait(ctx, "Acme", "https://state.example", &Options{MaxAgeDays: 30})
	if err != nil || first.FromStore {
		t.Fatalf("first scan: %v %+v", err, first)
	}
	b, err := NewClientWith(key, baseURL, &ClientSettings{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	again, err := b.ScanAndWait(ctx, "Acme", "https://state.example", &Options{MaxAgeDays: 30})
	if err != nil || !again.FromStore || again.ID != first.ID {
		t.Fatalf("want the stored scan %s, got %v %+v", first.ID, err, again)
	}
}

# frozen_string_literal: true

# Minitest suite of the Ruby binding, against exona-sim (EXONA_SIM_BIN, else the repository's
# build). Run: ruby -Ilib test/test_exona.rb

require "minitest/autorun"
require "open3"
require "tmpdir"
require_relative "../lib/exona"

# A well-shaped key that the simulator answers with 401 INVALID_API_KEY.
REVOKED_KEY = "exo_test_revoked00000000000000000000000000000"

module SimServer
  def self.url
    @url ||= begin
      bin = ENV["EXONA_SIM_BIN"] || %w[release debug].map { |p| File.expand_path("../../../target/#{p}/exona-sim", __dir__) }
                                                    .find { |p| File.exist?(p) }
      raise "exona-sim not built: run cargo build -p exona-sim" unless bin

      stdin, stdout, wait = Open3.popen2(bin, "--scan-min", "0.05", "--scan-max", "0.15", "--retry-after", "0.05",
                                         "--rate-limit", "100000", "--exit-after", "300",
                                         "--revoked-key", REVOKED_KEY)
      stdin.close
      Minitest.after_run { Process.kill("TERM", wait.pid) rescue nil }
      ENV["EXONA_SCAN_DURATION_MS"] = "50-150"
      stdout.gets.strip
    end
  end
end

class ExonaTest < Minitest::Test
  def client(n)
    Exona::Client.new(api_key: format("exo_test_%036d", n), base_url: SimServer.url)
  end

  def test_scan_and_wait_gives_hash_style_access
    r = client(1).scan_and_wait("Acme AI Ltd", "https://acme.ai")
    assert_equal "completed", r.status
    assert_match(/\Ascn_test_/, r.scan_id)
    assert_includes ["Low", "Medium", "High", "Very High"], r.overall_risk_level
    assert_equal "Acme AI Ltd", r["company"]["name"]
    assert_kind_of Integer, r.dig("result", "risk_assessment", "autonomy", "score")
    refute r.cached?
  end

  def test_create_get_wait_and_cache
    c = client(2)
    created = c.create("Acme", "https://cache.example")
    assert_equal "processing", created.status
    assert_equal 201, created.http_status
    assert_equal created.scan_id, c.get(created.scan_id).scan_id
    assert_equal "completed", c.wait(created.scan_id).status
    hit = c.scan_and_wait("Acme", "https://cache.example", max_age_days: 30)
    assert hit.cached?
  end

  def test_exceptions_per_code_carry_ids
    c = client(3)
    assert_raises(Exona::InvalidArgumentError) { c.scan_and_wait("Acme", "http://acme.ai") }
    e = assert_raises(Exona::ScanFailedError) { c.scan_and_wait("Gone", "https://gone.invalid") }
    assert_match(/\Ascn_test_/, e.scan_id)
    assert_equal "WEBSITE_UNREACHABLE", e.api_code
    assert_match(/\Areq_/, e.request_id)
    # A key of the wrong shape is refused before any request; a revoked one gets its 401.
    assert_raises(Exona::InvalidArgumentError) { Exona::Client.new(api_key: "exo_test_bad", base_url: SimServer.url) }
    e = assert_raises(Exona::AuthenticationError) do
      Exona::Client.new(api_key: REVOKED_KEY, base_url: SimServer.url).scan_and_wait("A", "https://a.ai")
    end
    assert_equal 401, e.http_status
    assert_raises(Exona::InvalidArgumentError) { Exona::Client.new(api_key: "k", base_url: "http://example.com/") }
    e = assert_raises(Exona::TimeoutError) { c.scan_and_wait("Stuck", "https://stuck.acme.ai", timeout: 0.5) }
    refute_nil e.scan_id
  end

  def test_interrupting_a_thread_ends_its_wait
    c = client(4)
    t = Thread.new { c.scan_and_wait("Stuck", "https://stuck.acme.ai", timeout: 60) }
    t.report_on_exception = false
    sleep 0.3
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    t.raise(Interrupt)
    assert_raises(Interrupt) { t.join }
    # The stuck scan never ends and the call's deadline is 60 s: returning well before it can
    # only be the interrupt's doing (the cancel latency benchmark measures how fast).
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 30.0
  end

  def test_other_threads_run_while_one_waits
    c = client(5)
    ticks = 0
    ticker = Thread.new { loop { ticks += 1; sleep 0.002 } }
    # The ticker may run once before the call starts; the scan takes at least 50 ms (the
    # simulator's shortest), so a binding that released the GVL lets it tick many times
    # while the call waits, and one that held it lets it tick not at all.
    Thread.pass
    before = ticks
    c.scan_and_wait("Acme", "https://gvl.example")
    during = ticks - before
    ticker.kill
    ticker.join
    assert_operator during, :>=, 5, "the other thread did not run while the call waited"
  end

  def test_batch
    b = Exona::Batch.new(client(6))
    20.times { |i| assert_equal i, b.add("Co #{i}", i == 3 ? "https://gone.invalid" : "https://rb-#{i}.example") }
    outcomes = b.to_a
    assert_equal (0...20).to_a, outcomes.map(&:first).sort
    failed = outcomes.reject { |_, _, error| error.nil? }
    assert_equal [3], failed.map(&:first)
    assert_kind_of Exona::ScanFailedError, failed.first[2]
    assert_equal({ queued: 0, in_flight: 0, done: 20 }, b.counts)
    b.close
  end

  def test_a_journaled_batch_resumes_with_its_rows
    c = client(42)
    journal = File.join(Dir.mktmpdir, "rows.journal")
    run = lambda do
      b = Exona::Batch.new(c, journal: journal)
      3.times { |i| b.add("Co", "https://rb-journal-#{i}.example") }
      ids = b.to_a.map { |_, result, error| error ? raise(error) : result.scan_id }.sort
      assert_equal 3, b.status[:completed]
      b.close
      ids
    end
    assert_equal run.call, run.call
  end

  def test_progress_events_arrive_and_a_falsy_return_cancels
    c = client(40)
    events = []
    r = c.scan_and_wait("Acme", "https://rb-progress.example", progress: ->(e) { events << e; true })
    assert(events.any? { |e| e[:scan_id] == r.scan_id && e[:requests_used] >= 1 }, events.inspect)
    assert(events.all? { |e| Exona::Native::REASONS.include?(e[:reason]) }, events.inspect)
    # The default mode is adaptive: each wait says its regime and thrift.
    assert(events.all? { |e| %i[adaptive latency frugal].include?(e[:regime]) && e[:thrift].between?(0, 1) }, events.inspect)
    e = assert_raises(Exona::CancelledError) do
      c.scan_and_wait("Stuck", "https://stuck.rb-progress.example", progress: ->(ev) { ev[:scan_id].nil? })
    end
    refute_nil e.scan_id
  end

  def test_client_settings_apply_and_are_checked
    key = format("exo_test_%036d", 41)
    c = Exona::Client.new(api_key: key, base_url: SimServer.url, attempt_timeout: 5, connect_timeout: 2,
                          user_agent_suffix: "rb-test/1", proxy: "", poll_mode: :frugal, expected_duration: [0.05, 0.15])
    assert_equal "completed", c.scan_and_wait("Acme", "https://rb-settings.example").status
    # A fixed thrift wins over the client's frugal mode; one outside 0..1 is refused.
    events = []
    c.scan_and_wait("Acme", "https://thrift.rb-settings.example", thrift: 0.5, progress: ->(e) { events << e; true })
    waits = events.select { |e| e[:scan_id] }
    refute_empty waits, events.inspect
    assert(waits.all? { |e| e[:regime] == :adaptive && e[:thrift] == 0.5 }, waits.inspect)
    assert_raises(Exona::InvalidArgumentError) { c.scan_and_wait("Acme", "https://rb-settings.example", thrift: 2) }
    assert_raises(Exona::InvalidArgumentError) { c.scan_and_wait("Acme", "https://rb-settings.example", thrift: "half") }
    assert_raises(Exona::InvalidArgumentError) { Exona::Client.new(api_key: key, base_url: SimServer.url, ca_bundle: "/nonexistent.pem") }
    assert_raises(Exona::InvalidArgumentError) { Exona::Client.new(api_key: key, base_url: SimServer.url, poll_mode: :fastest) }
    # A fleet store URL that is not postgresql:// is refused, without its password in the message.
    e = assert_raises(Exona::InvalidArgumentError) do
      Exona::Client.new(api_key: key, base_url: SimServer.url, state_url: "mysql://u:rb-secret-pw@h/x")
    end
    refute_includes e.message, "rb-secret-pw"
    # One that is (the database is reached on first use) makes a client.
    Exona::Client.new(api_key: key, base_url: SimServer.url, state_url: "postgresql://u:pw@127.0.0.1:1/x").close
  end

  def test_the_readmes_settings_snippet_runs_as_written
    readme = File.read(File.expand_path("../README.md", __dir__))
    snippet = readme[/^## Settings and progress\n+```ruby\n(.*?)^```/m, 1]
    refute_nil snippet, "README.md has a ruby snippet under Settings and progress"
    env = { "EXONA_API_KEY" => format("exo_test_%036d", 43), "EXONA_BASE_URL" => SimServer.url,
            "EXONA_SCAN_DURATION_MS" => "50-150", "EXONA_STATE_DIR" => "off" }
    out, err, status = Open3.capture3(env, RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", snippet)
    assert status.success?, "the snippet failed:\n#{out}\n#{err}"
    assert_includes ["Low", "Medium", "High", "Very High"], out.lines.last.strip, out
  end

  def test_the_gemspec_builds_without_warnings_and_matches_the_license
    spec = Gem::Specification.load(File.expand_path("../exona.gemspec", __dir__))
    assert_equal %w[MIT Apache-2.0], spec.licenses
    cargo = File.read(File.expand_path("../../../Cargo.toml", __dir__))
    assert_match(/^license = "MIT OR Apache-2.0"$/, cargo)
    Dir.mktmpdir do |dir|
      out, status = Open3.capture2e("gem", "build", File.expand_path("../exona.gemspec", __dir__), "--output",
                                    File.join(dir, "exona.gem"), chdir: File.expand_path("..", __dir__))
      assert status.success?, out
      refute_match(/WARNING/, out)
    end
  end

  def test_state_dir_answers_a_repeated_scan_with_no_request
    Dir.mktmpdir do |dir|
      key = format("exo_test_%036d", 42)
      first = Exona::Client.new(api_key: key, base_url: SimServer.url, state_dir: dir)
                           .scan_and_wait("Acme", "https://rb-state.example", max_age_days: 30)
      refute first.from_store?
      again = Exona::Client.new(api_key: key, base_url: SimServer.url, state_dir: dir)
                           .scan_and_wait("Acme", "https://rb-state.example", max_age_days: 30)
      assert again.from_store?
      assert_equal first.scan_id, again.scan_id
    end
  end
  # Requests the simulator saw from `key` (GET /_sim/stats; it names a key by its first 9 and
  # last 4 characters).
  def sim_requests(key)
    require "net/http"
    rows = JSON.parse(Net::HTTP.get(URI(SimServer.url.sub(%r{/api/v1\z}, "/_sim/stats"))))
    rows.select { |name, _| name.start_with?("#{key[0, 9]}\u2026#{key[-4..]}") }
        .sum { |_, r| r["posts"] + r["gets"] }
  end

  # DESIGN.md 9.2: C strings end at a NUL, so cutting there would scan another website. Every
  # string is refused with the binding's own error, naming which, and nothing is sent.
  def test_a_nul_in_any_string_is_refused_and_nothing_is_sent
    key = format("exo_test_%036d", 9201)
    c = Exona::Client.new(api_key: key, base_url: SimServer.url)
    calls = {
      "company_name" => -> { c.scan_and_wait("Acme\0Evil", "https://acme.ai") },
      "company_website" => -> { c.create("Acme", "https://nul2.example\0.evil") },
      "scan_id" => -> { c.get("scn_test_1\0") },
      "question" => -> { c.scan_and_wait("Acme", "https://acme.ai", questionnaire: [["Q\0", "a"]]) },
      "state_dir" => -> { Exona::Client.new(api_key: key, base_url: SimServer.url, state_dir: "/tmp/x\0y") },
      "base_url" => -> { Exona::Client.new(api_key: key, base_url: "#{SimServer.url}\0x") },
      "journal" => -> { Exona::Batch.new(c, journal: "/tmp/j\0k") },
      "company_website " => -> { Exona::Batch.new(c).add("Evil", "https://nul4.example\0.evil") }
    }
    calls.each do |what, call|
      e = assert_raises(Exona::InvalidArgumentError, what) { call.call }
      assert_match(/#{what.strip}.*NUL/, e.message)
      assert_equal :invalid_argument, e.code
    end
    assert_equal 0, sim_requests(key)
  ensure
    c&.close
  end

  # Waits for a forked child at most `limit` seconds: its exit status, or :hung (then killed).
  def wait_child(pid, limit)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
    loop do
      _, status = Process.waitpid2(pid, Process::WNOHANG)
      return status if status

      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill("KILL", pid)
        Process.waitpid(pid)
        return :hung
      end
      sleep 0.05
    end
  end

  # A client made before Process.fork works in the child (a result within 30 s); the child
  # exits cleanly, freeing the client it inherited (no panic, no hang); the parent still scans.
  def test_a_client_made_before_fork_works_in_the_child
    c = client(9202)
    c.scan_and_wait("Before Fork", "https://rb-before-fork.example")
    err_r, err_w = IO.pipe
    pid = Process.fork do
      err_r.close
      $stderr.reopen(err_w)
      r = c.scan_and_wait("In Child", "https://rb-in-child.example", timeout: 15)
      own = client(9203).scan_and_wait("Own", "https://rb-own.example", timeout: 15)
      exit(r.status == "completed" && own.status == "completed" ? 0 : 1) # finalizers free both
    end
    err_w.close
    status = wait_child(pid, 30)
    stderr = err_r.read
    refute_equal :hung, status, "the child hung"
    assert status.success?, "the child failed: #{status.inspect}\n#{stderr}"
    refute_match(/panick/, stderr)
    assert_equal "completed", c.scan_and_wait("After Fork", "https://rb-after-fork.example").status
  ensure
    c&.close
  end

  # #close from another thread ends the calls in flight with CancelledError (not after their
  # 60 s deadline), and later calls say the client is closed.
  def test_close_cancels_calls_in_other_threads
    c = client(9204)
    threads = 6.times.map do |i|
      Thread.new do
        c.scan_and_wait("Stuck", "https://stuck.rb-#{i}.example", timeout: 60)
        :result
      rescue Exona::Error => e
        e.class
      end
    end
    sleep 0.3
    c.close
    outcomes = threads.map { |t| t.join(15) ? t.value : :still_running }
    assert_equal [Exona::CancelledError] * 6, outcomes
    e = assert_raises(Exona::CancelledError) { c.get("scn_test_x") }
    assert_match(/closed/, e.message)
    c.close # twice is harmless
  end
end

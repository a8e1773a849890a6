# frozen_string_literal: true

# libexona for Ruby: the Exona AI-risk scanning API through the C library, with the ffi gem.
#
# The library is looked for, in order: ENV["EXONA_LIB"] (a path to libexona.so); the one the
# gem carries (lib/exona/libexona.so, in a gem `make dist` built); the libdir
# that pkg-config names for exona (an installed prefix: make install PREFIX=...; set
# PKG_CONFIG_PATH=PREFIX/lib/pkgconfig when it is not a system path); the system's library
# path ("libexona.so.0", "libexona.so"); and this repository's build (../../target/release).

require "ffi"
require "json"
require "open3"

module Exona
  # Where libexona may be, most explicit first.
  module Locate # :nodoc:
    REPO_BUILD = File.expand_path("../../../target/release/libexona.so", __dir__)
    BUNDLED = File.expand_path("exona/libexona.so", __dir__)

    def self.pkg_config_libdir
      out, status = Open3.capture2e("pkg-config", "--variable=libdir", "exona")
      dir = out.strip
      status.success? && !dir.empty? ? File.join(dir, "libexona.so") : nil
    rescue SystemCallError
      nil # pkg-config is not installed
    end

    def self.candidates
      bundled = File.exist?(BUNDLED) ? BUNDLED : nil
      [ENV["EXONA_LIB"], bundled, pkg_config_libdir, "libexona.so.0", "exona", REPO_BUILD].compact.reject(&:empty?)
    end

    HELP = <<~TEXT
      libexona was not found. Tried: EXONA_LIB, pkg-config's libdir for exona, the system's
      library path and this repository's build. Point the gem at it with one of:
        EXONA_LIB=/path/to/libexona.so
        PKG_CONFIG_PATH=PREFIX/lib/pkgconfig   (after make install PREFIX=...)
        cargo build --release -p exona         (in a checkout of libexona)
    TEXT
  end

  # The raw C functions. Blocking calls release the GVL, so other Ruby threads run meanwhile.
  module C
    extend FFI::Library

    begin
      ffi_lib Locate.candidates
    rescue LoadError => e
      raise LoadError, "#{Locate::HELP}(#{e.message.lines.first&.strip})"
    end

    # One progress event (exona_progress in exona.h).
    class ProgressEvent < FFI::Struct
      layout :scan_id, :pointer, :status, :pointer, :reason, :int, :wait_ms, :uint64,
             :requests_used, :uint32, :budget_left, :uint32, :regime, :int, :thrift_permille, :uint32
    end
    callback :progress_fn, %i[pointer pointer], :int

    attach_function :exona_version, [], :string
    attach_function :exona_code_name, [:int], :string
    attach_function :exona_client_create, %i[string string pointer pointer], :int
    attach_function :exona_client_free, [:pointer], :void
    attach_function :exona_scan_options_new, [], :pointer
    attach_function :exona_scan_options_free, [:pointer], :void
    attach_function :exona_scan_options_set_max_age_days, %i[pointer uint32], :int
    attach_function :exona_scan_options_set_force_refresh, %i[pointer bool], :int
    attach_function :exona_scan_options_set_include_field_citations, %i[pointer bool], :int
    attach_function :exona_scan_options_add_question, %i[pointer string string], :int
    attach_function :exona_scan_options_set_timeout_ms, %i[pointer uint64], :int
    attach_function :exona_scan_options_set_poll_mode, %i[pointer int], :int
    attach_function :exona_scan_options_set_thrift_permille, %i[pointer int], :int
    attach_function :exona_scan_options_set_cancel, %i[pointer pointer], :int
    attach_function :exona_scan_options_set_progress, %i[pointer progress_fn pointer], :int
    attach_function :exona_client_options_new, [], :pointer
    attach_function :exona_client_options_free, [:pointer], :void
    attach_function :exona_client_options_set_connect_timeout_ms, %i[pointer uint64], :int
    attach_function :exona_client_options_set_attempt_timeout_ms, %i[pointer uint64], :int
    attach_function :exona_client_options_set_user_agent_suffix, %i[pointer string], :int
    attach_function :exona_client_options_set_proxy, %i[pointer string], :int
    attach_function :exona_client_options_set_ca_bundle_file, %i[pointer string], :int
    attach_function :exona_client_options_set_poll_mode, %i[pointer int], :int
    attach_function :exona_client_options_set_expected_duration_ms, %i[pointer uint64 uint64], :int
    attach_function :exona_client_options_set_state_dir, %i[pointer string], :int
    attach_function :exona_client_options_set_state_url, %i[pointer string], :int
    attach_function :exona_client_create_with_options, %i[string string pointer pointer pointer], :int
    attach_function :exona_cancel_new, [], :pointer
    attach_function :exona_cancel, [:pointer], :int
    attach_function :exona_cancel_free, [:pointer], :void
    attach_function :exona_scan_and_wait, %i[pointer string string pointer pointer], :int, blocking: true
    attach_function :exona_scan_create, %i[pointer string string pointer pointer], :int, blocking: true
    attach_function :exona_scan_get, %i[pointer string pointer], :int, blocking: true
    attach_function :exona_scan_wait, %i[pointer string pointer pointer], :int, blocking: true
    attach_function :exona_result_code, [:pointer], :int
    attach_function :exona_result_message, [:pointer], :pointer
    attach_function :exona_result_scan_id, [:pointer], :pointer
    attach_function :exona_result_json, [:pointer], :pointer
    attach_function :exona_result_http_status, [:pointer], :uint16
    attach_function :exona_result_error_code, [:pointer], :pointer
    attach_function :exona_result_hint, [:pointer], :pointer
    attach_function :exona_result_param, [:pointer], :pointer
    attach_function :exona_result_request_id, [:pointer], :pointer
    attach_function :exona_result_cached, [:pointer], :bool
    attach_function :exona_result_from_store, [:pointer], :bool
    attach_function :exona_result_retry_after_ms, [:pointer], :uint64
    attach_function :exona_result_index, [:pointer], :size_t
    attach_function :exona_result_free, [:pointer], :void
    attach_function :exona_batch_new, [:pointer], :pointer
    attach_function :exona_batch_free, [:pointer], :void
    attach_function :exona_batch_add, %i[pointer string string pointer pointer], :int
    attach_function :exona_batch_next, %i[pointer uint64 pointer], :int, blocking: true
    attach_function :exona_batch_cancel, %i[pointer size_t], :int
    attach_function :exona_batch_cancel_all, [:pointer], :int
    attach_function :exona_batch_counts, %i[pointer pointer pointer pointer], :int
    attach_function :exona_batch_set_journal, %i[pointer string], :int
    attach_function :exona_batch_set_reconcile, %i[pointer int], :int
    attach_function :exona_batch_get_status, %i[pointer pointer], :int

    # exona_batch_status, as include/exona.h declares it.
    class BatchStatus < FFI::Struct
      layout :queued, :size_t, :in_flight, :size_t, :completed, :size_t, :failed, :size_t,
             :requests, :uint64, :budget_left, :uint32, :eta_seconds, :double
    end
  end

  CODES = %i[ok invalid_argument authentication permission bad_request not_found rate_limited server
             network protocol timeout cancelled scan_failed ambiguous_create internal].freeze
  NO_INDEX = (2**(FFI.type_size(:size_t) * 8)) - 1

  def self.version = C.exona_version

  # A failed call. Subclasses name the code (Exona::TimeoutError, ...). Whenever a scan exists
  # its id is in #scan_id (resume it with Client#wait); #request_id is for Exona support.
  class Error < StandardError
    attr_reader :code, :http_status, :api_code, :hint, :param, :request_id, :scan_id, :retry_after, :result

    def initialize(message, code: :internal, http_status: 0, api_code: nil, hint: nil, param: nil,
                   request_id: nil, scan_id: nil, retry_after: nil, result: nil)
      super(message)
      @code = code
      @http_status = http_status
      @api_code = api_code
      @hint = hint
      @param = param
      @request_id = request_id
      @scan_id = scan_id
      @retry_after = retry_after
      @result = result
    end
  end

  ERRORS = CODES.drop(1).to_h do |code|
    name = "#{code.to_s.split('_').map(&:capitalize).join}Error"
    [code, const_set(name, Class.new(Error))]
  end.freeze

  # A scan object as the API returned it. Hash-style access: result["result"]["risk_assessment"],
  # result.dig("company", "name").
  class Result
    attr_reader :scan_id, :json, :http_status, :request_id

    def initialize(scan_id:, json:, cached:, http_status:, request_id:, from_store: false)
      @from_store = from_store
      @scan_id = scan_id
      @json = json
      @cached = cached
      @http_status = http_status
      @request_id = request_id
      @data = json ? JSON.parse(json) : {}
    end

    def cached? = @cached
    # Answered by the local state store, with no request.
    def from_store? = @from_store
    def [](key) = @data[key]
    def dig(*keys) = @data.dig(*keys)
    def to_h = @data
    def status = @data["status"]
    def overall_risk_level = dig("result", "risk_assessment", "overall_risk_level")
  end

  module Native # :nodoc:
    def self.str(ptr) = ptr.null? ? nil : ptr.read_string.force_encoding(Encoding::UTF_8)

    # Copies a C result into Ruby and frees it: [Result or nil, Error or nil].
    def self.take(ptr)
      return [nil, Error.new("no result")] if ptr.null?

      code = CODES[C.exona_result_code(ptr)] || :internal
      json = str(C.exona_result_json(ptr))
      result = json && Result.new(scan_id: str(C.exona_result_scan_id(ptr)), json: json,
                                  cached: C.exona_result_cached(ptr), from_store: C.exona_result_from_store(ptr),
                                  http_status: C.exona_result_http_status(ptr),
                                  request_id: str(C.exona_result_request_id(ptr)))
      return [result, nil] if code == :ok

      ms = C.exona_result_retry_after_ms(ptr)
      error = ERRORS.fetch(code, Error).new(
        "#{C.exona_code_name(CODES.index(code))}: #{str(C.exona_result_message(ptr))}",
        code: code, http_status: C.exona_result_http_status(ptr), api_code: str(C.exona_result_error_code(ptr)),
        hint: str(C.exona_result_hint(ptr)), param: str(C.exona_result_param(ptr)),
        request_id: str(C.exona_result_request_id(ptr)), scan_id: str(C.exona_result_scan_id(ptr)),
        retry_after: ms.zero? ? nil : ms / 1000.0, result: result
      )
      [result, error]
    ensure
      C.exona_result_free(ptr) unless ptr.null?
    end

    MODES = { balanced: 0, latency: 1, frugal: 2, adaptive: 3 }.freeze

    # A Ruby string on its way to C, or nil for NULL. A C string ends at its first NUL, so
    # "https://a.example\0.evil" would scan https://a.example: such a string is refused with
    # InvalidArgumentError, naming `what`, and nothing is sent.
    def self.c_string(value, what)
      return nil if value.nil?

      value = value.to_s
      if (at = value.index("\0"))
        raise InvalidArgumentError.new(
          "#{what} contains a NUL character (at index #{at}); C strings cannot carry one, and cutting the " \
          "string there would name something else, so nothing was sent", code: :invalid_argument
        )
      end
      value
    end

    # Builds C scan options; the caller frees them with exona_scan_options_free.
    # thrift (0.0 to 1.0) fixes how thrifty the polling is whatever the key's window, winning
    # over mode: 0 polls like :latency, 1 like :frugal (exona_scan_options_set_thrift_permille).
    def self.options(max_age_days: nil, force_refresh: false, include_field_citations: false,
                     questionnaire: [], timeout: nil, mode: nil, thrift: nil)
      opts = C.exona_scan_options_new
      check = lambda do |rc, what|
        next if rc.zero?

        C.exona_scan_options_free(opts)
        raise InvalidArgumentError.new(what, code: :invalid_argument)
      end
      check.call(C.exona_scan_options_set_max_age_days(opts, max_age_days), "max_age_days must be 0 to 365") if max_age_days
      C.exona_scan_options_set_force_refresh(opts, force_refresh)
      C.exona_scan_options_set_include_field_citations(opts, include_field_citations)
      questionnaire.each_with_index do |(question, answer), i|
        q = a = nil
        begin
          q = c_string(question, "questionnaire item #{i + 1}'s question")
          a = c_string(answer, "questionnaire item #{i + 1}'s answer")
        rescue InvalidArgumentError
          C.exona_scan_options_free(opts)
          raise
        end
        check.call(C.exona_scan_options_add_question(opts, q, a),
                   "questionnaire item #{i + 1} is over the limits (50 items, 5000 characters per answer)")
      end
      check.call(C.exona_scan_options_set_timeout_ms(opts, (timeout * 1000).ceil), "timeout must be positive") if timeout
      check.call(C.exona_scan_options_set_poll_mode(opts, MODES.fetch(mode) { -1 }), "mode must be one of #{MODES.keys}") if mode
      if thrift
        permille = thrift.is_a?(Numeric) && thrift.between?(0, 1) ? (thrift * 1000).round : -2
        check.call(C.exona_scan_options_set_thrift_permille(opts, permille), "thrift must be a number from 0 to 1")
      end
      opts
    end

    REASONS = %i[create schedule retry_after backoff rate_limit budget final_poll other_create].freeze

    # A C callback that hands each event to the block as a Hash; a falsy return cancels.
    # The caller keeps the returned Proc alive for as long as the options are in use.
    def self.progress_callback(block)
      proc do |event_ptr, _user_data|
        e = C::ProgressEvent.new(event_ptr)
        event = { scan_id: str(e[:scan_id]), status: str(e[:status]), reason: REASONS[e[:reason]],
                  wait: e[:wait_ms] / 1000.0, requests_used: e[:requests_used], budget_left: e[:budget_left],
                  regime: MODES.key(e[:regime]), thrift: e[:thrift_permille] / 1000.0 }
        block.call(event) ? 0 : 1
      rescue StandardError
        1 # an exception in the block cancels the call rather than crossing into C
      end
    end

    # Builds C client options from keyword settings; the caller frees them.
    def self.client_options(connect_timeout: nil, attempt_timeout: nil, user_agent_suffix: nil, proxy: nil,
                            ca_bundle: nil, poll_mode: nil, expected_duration: nil, state_dir: nil, state_url: nil)
      { user_agent_suffix: user_agent_suffix, proxy: proxy, ca_bundle: ca_bundle, state_dir: state_dir,
        state_url: state_url }.each { |name, value| c_string(value, name.to_s) }
      o = C.exona_client_options_new
      check = lambda do |rc, what|
        next if rc.zero?

        C.exona_client_options_free(o)
        raise InvalidArgumentError.new(what, code: :invalid_argument)
      end
      ms = ->(secs) { (secs * 1000).ceil }
      check.call(C.exona_client_options_set_connect_timeout_ms(o, ms.call(connect_timeout)), "connect_timeout must be positive") if connect_timeout
      check.call(C.exona_client_options_set_attempt_timeout_ms(o, ms.call(attempt_timeout)), "attempt_timeout must be positive") if attempt_timeout
      check.call(C.exona_client_options_set_user_agent_suffix(o, user_agent_suffix), "user_agent_suffix must be printable ASCII") if user_agent_suffix
      check.call(C.exona_client_options_set_proxy(o, proxy), "proxy must be a URL (or \"\" for none)") if proxy
      check.call(C.exona_client_options_set_ca_bundle_file(o, ca_bundle), "ca_bundle must be a readable PEM file") if ca_bundle
      check.call(C.exona_client_options_set_state_dir(o, state_dir.to_s), "state_dir must be a path (or \"off\")") if state_dir
      check.call(C.exona_client_options_set_state_url(o, state_url.to_s), "state_url must be a postgresql:// URL (or \"off\")") if state_url
      check.call(C.exona_client_options_set_poll_mode(o, MODES.fetch(poll_mode) { -1 }), "poll_mode must be one of #{MODES.keys}") if poll_mode
      if expected_duration
        lo, hi = expected_duration
        check.call(C.exona_client_options_set_expected_duration_ms(o, ms.call(lo), ms.call(hi)),
                   "expected_duration must be [min, max] seconds, 0 < min <= max")
      end
      o
    end
  end

  # A client's C handle and the calls in flight on it. A call enters before its helper thread
  # starts and leaves when the C call has returned; #close refuses new calls, cancels those in
  # flight, and the handle is freed by whichever comes last (#close or the last call to leave):
  # no call ever reaches C with a freed handle.
  class Handle # :nodoc:
    CLOSED = "the client is closed: its calls were cancelled, and it takes no new ones"
    @all = ObjectSpace::WeakMap.new

    class << self
      attr_reader :all

      # In a forked child: the parent's calls run on threads the child does not have, and a
      # lock one of them held at the fork would never be let go, so each handle starts afresh.
      # The C handle stays usable: libexona gives the child an engine of its own.
      def after_fork_in_child
        all.each_key(&:reset_after_fork)
      end
    end

    def initialize(ptr, free)
      @ptr = ptr
      @free = free
      @lock = Mutex.new
      @idle = ConditionVariable.new
      @tokens = {}
      @closed = false
      Handle.all[self] = true
    end

    # The C handle for a call about to start. `call` is the call's key (its cancel token, or any
    # object for a short call with none); `token` what #close and #cancel_all cancel (or nil).
    def enter(call, token = nil)
      @lock.synchronize do
        raise CancelledError.new(CLOSED, code: :cancelled) if @closed

        @tokens[call] = token
        @ptr
      end
    end

    def leave(call)
      ptr = @lock.synchronize do
        @tokens.delete(call)
        @idle.broadcast
        take_if_done
      end
      @free.call(ptr) if ptr
    end

    # Cancels every call in flight; returns how many.
    def cancel_all
      tokens = @lock.synchronize { @tokens.values.compact }
      tokens.each { |t| C.exona_cancel(t) }
      tokens.size
    end

    def close(timeout)
      tokens = @lock.synchronize do
        @closed = true
        @tokens.values.compact
      end
      tokens.each { |t| C.exona_cancel(t) }
      ptr = @lock.synchronize do
        deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
        until @tokens.empty?
          left = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
          break if left && left <= 0

          @idle.wait(@lock, left)
        end
        take_if_done
      end
      @free.call(ptr) if ptr
    end

    def closed? = @closed

    # Frees the handle without the lock, for a finalizer: only when no call can use it.
    def release_unused
      ptr = @ptr
      @ptr = nil
      @closed = true
      @free.call(ptr) if ptr
    end

    def reset_after_fork
      @lock = Mutex.new
      @idle = ConditionVariable.new
      @tokens = {}
    end

    private

    def take_if_done
      return nil unless @closed && @tokens.empty? && @ptr

      ptr = @ptr
      @ptr = nil
      ptr
    end
  end

  # Process._fork (Ruby 3.1+) is called by every fork: Kernel#fork, Process.fork, and the
  # forking servers built on them (Puma, Unicorn, Resque).
  module ForkHook # :nodoc:
    def _fork
      pid = super
      Handle.after_fork_in_child if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)

  # A client of the Exona API, safe to share between threads.
  #
  # A client made before fork (Puma and Unicorn with preload_app, Resque, Process.fork) works
  # in the child: libexona gives the child its own engine and connections on its first call.
  # #close (from any thread) cancels the calls running in other threads: each raises
  # CancelledError.
  class Client
    # api_key nil: EXONA_API_KEY; base_url nil: EXONA_BASE_URL, else the production URL.
    # Settings (all optional): connect_timeout and attempt_timeout (seconds), proxy (a URL, or
    # "" for none), ca_bundle (a PEM file), user_agent_suffix, poll_mode (:adaptive, the default,
    # :balanced, :latency, :frugal), expected_duration ([min, max] seconds), state_dir (the state store shared by
    # the processes of the host; "off" for none) and state_url (a postgresql:// URL: the fleet
    # store shared by the hosts of a fleet, in place of state_dir's file; its password is never shown).
    def initialize(api_key: nil, base_url: nil, **settings)
      api_key = Native.c_string(api_key, "api_key")
      base_url = Native.c_string(base_url, "base_url")
      client = FFI::MemoryPointer.new(:pointer)
      error = FFI::MemoryPointer.new(:pointer)
      opts = Native.client_options(**settings)
      begin
        rc = C.exona_client_create_with_options(api_key, base_url, opts, client, error)
      ensure
        C.exona_client_options_free(opts)
      end
      if rc != 0
        _, err = Native.take(error.read_pointer)
        raise err
      end
      @handle = Handle.new(client.read_pointer, C.method(:exona_client_free))
      ObjectSpace.define_finalizer(self, Client.finalizer(@handle))
    end

    # Frees at garbage collection what #close did not. No call can be running then (each
    # holds its client), and a finalizer may take no lock (it runs in trap context).
    def self.finalizer(handle) = proc { handle.release_unused }

    attr_reader :handle # :nodoc:

    # Closes the client: new calls raise CancelledError, calls running in other threads are
    # cancelled (each raises CancelledError, keeping the scan id of a scan already created),
    # and the C client is freed once none of them uses it. Waits up to `timeout` seconds (nil:
    # as long as they take) for them to return. Idempotent.
    def close(timeout: 15)
      @handle.close(timeout)
    end

    # Cancels every call running on this client, in any thread; returns how many. The client
    # stays open.
    def cancel_all = @handle.cancel_all

    # Creates a scan and waits until it completes or fails. Raises an Exona::Error subclass.
    # Interruptible: Thread#raise or #kill on the calling thread cancels the wait at once.
    def scan_and_wait(company_name, company_website, **options)
      name, site = company(company_name, company_website)
      call(options) { |ptr, opts, out| C.exona_scan_and_wait(ptr, name, site, opts, out) }
    end

    # Creates a scan and returns at once (status "processing", or a cached "completed").
    def create(company_name, company_website, **options)
      name, site = company(company_name, company_website)
      call(options) { |ptr, opts, out| C.exona_scan_create(ptr, name, site, opts, out) }
    end

    # One GET of a scan, whatever its status.
    def get(scan_id)
      id = Native.c_string(scan_id, "scan_id")
      call({}) { |ptr, _, out| C.exona_scan_get(ptr, id, out) }
    end

    # Waits for an existing scan (no new POST): how a program resumes a scan.
    def wait(scan_id, timeout: nil, mode: nil, thrift: nil, progress: nil)
      id = Native.c_string(scan_id, "scan_id")
      call({ timeout: timeout, mode: mode, thrift: thrift, progress: progress }) { |ptr, opts, out| C.exona_scan_wait(ptr, id, opts, out) }
    end

    private

    def company(name, website)
      [Native.c_string(name, "company_name"), Native.c_string(website, "company_website")]
    end

    # Runs a blocking C call on a helper thread, so the calling thread stays interruptible;
    # an interruption cancels the call through its token, and nothing leaks.
    def call(options, &blocking)
      options = options.dup
      progress = options.delete(:progress)
      opts = Native.options(**options)
      # Held in this frame for the whole call: C may call it until the call returns.
      callback = progress && Native.progress_callback(progress)
      C.exona_scan_options_set_progress(opts, callback, nil) if callback
      token = C.exona_cancel_new
      C.exona_scan_options_set_cancel(opts, token)
      out = FFI::MemoryPointer.new(:pointer)
      begin
        ptr = @handle.enter(token, token)
      rescue StandardError
        C.exona_scan_options_free(opts)
        C.exona_cancel_free(token)
        raise
      end
      worker = Thread.new do
        blocking.call(ptr, opts, out)
      ensure
        @handle.leave(token)
      end
      begin
        worker.join
      ensure
        if worker.alive?
          C.exona_cancel(token)
          worker.join
          ptr = out.read_pointer
          C.exona_result_free(ptr) unless ptr.null?
          out = nil
        end
        C.exona_scan_options_free(opts)
        C.exona_cancel_free(token)
      end
      result, error = Native.take(out.read_pointer)
      raise error if error

      result
    end
  end

  # Many scans at once on one client; every added request ends with exactly one outcome.
  class Batch
    include Enumerable

    # With `journal:` (a file path), the rows are journaled: a batch made again on the same
    # journal, with the same rows added in the same order, resumes (finished rows cost no
    # request, created rows are waited for by id, no company is created twice). A row whose
    # create was sent but not answered before the process stopped ends with
    # AmbiguousCreateError unless `reconcile: true` (created again with max_age_days, so a
    # completed twin is returned instead of a new scan).
    def initialize(client, journal: nil, reconcile: false)
      @client = client
      handle = client.handle
      # The batch holds its own reference to the client from here on.
      marker = Object.new
      batch = begin
        C.exona_batch_new(handle.enter(marker))
      ensure
        handle.leave(marker)
      end
      @ptr = FFI::AutoPointer.new(batch, C.method(:exona_batch_free))
      return unless journal

      unless C.exona_batch_set_journal(@ptr, Native.c_string(journal, "journal")).zero?
        raise InvalidArgumentError.new("#{journal} cannot be used as the batch's journal (EXONA_LOG=warn says why)",
                                       code: :invalid_argument)
      end
      C.exona_batch_set_reconcile(@ptr, reconcile ? 1 : 0)
    end

    # Where the batch stands: counts, requests used, budget left, and `eta` (seconds until the
    # last row should end, nil when unknown).
    def status
      s = C::BatchStatus.new
      raise Error, "exona_batch_get_status failed" unless C.exona_batch_get_status(@ptr, s).zero?

      { queued: s[:queued], in_flight: s[:in_flight], completed: s[:completed], failed: s[:failed],
        requests: s[:requests], budget_left: s[:budget_left], eta: s[:eta_seconds].negative? ? nil : s[:eta_seconds] }
    end

    # Adds a scan request; returns its index (0, 1, 2, ... in order of addition).
    def add(company_name, company_website, **options)
      name = Native.c_string(company_name, "company_name")
      site = Native.c_string(company_website, "company_website")
      opts = Native.options(**options)
      index = FFI::MemoryPointer.new(:size_t)
      rc = C.exona_batch_add(@ptr, name, site, opts, index)
      raise InvalidArgumentError.new("the request could not be added", code: :invalid_argument) unless rc.zero?

      index.read(:size_t)
    ensure
      C.exona_scan_options_free(opts) if opts
    end

    # The next finished request as [index, result, error] (error nil on success), or nil when
    # every outcome has been collected. Waits at most `timeout` seconds (nil: no limit; then
    # :pending comes back). Interruptible between 100 ms slices.
    def next(timeout: nil)
      deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
      out = FFI::MemoryPointer.new(:pointer)
      loop do
        case CODES[C.exona_batch_next(@ptr, 100, out)]
        when :ok
          ptr = out.read_pointer
          index = C.exona_result_index(ptr)
          result, error = Native.take(ptr)
          return [index, result, error]
        when :not_found then return nil
        when :timeout
          return :pending if deadline && Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline
        else raise Error, "exona_batch_next failed"
        end
      end
    end

    # Yields [index, result, error] for every outcome as it arrives.
    def each
      while (item = self.next)
        yield item
      end
    end

    def counts
      ptrs = Array.new(3) { FFI::MemoryPointer.new(:size_t) }
      C.exona_batch_counts(@ptr, *ptrs)
      %i[queued in_flight done].zip(ptrs.map { |p| p.read(:size_t) }).to_h
    end

    def cancel(index)
      raise InvalidArgumentError.new("index #{index} was never added", code: :invalid_argument) unless C.exona_batch_cancel(@ptr, index).zero?
    end

    def cancel_all = C.exona_batch_cancel_all(@ptr)

    # Cancels what still runs and frees the batch now.
    def close
      @ptr.free
    end
  end
end

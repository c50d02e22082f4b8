# frozen_string_literal: true

require "io/wait"

module Wirecore
  # A running server: the core on its own loop, driven by the thread that
  # calls #run (DESIGN.md §4). The thread waits on the core's fd with the GVL
  # released, processes with the GVL held, and asks for the timeout again
  # after every process call (0: process again now, -1: the fd only).
  #
  # The wait is a poll on the core's fd plus a wake-up pipe with the GVL
  # released (so #stop and sends from other threads act at once), or, when #run is called
  # from a non-blocking fiber under a Fiber scheduler, IO#wait_readable on the
  # core's fd, which hands the wait to the scheduler.
  class Runtime
    attr_reader :port, :host, :thread, :metrics_port

    def initialize(app, host:, port:, tls: nil)
      @app = app
      @native = Native::Server.new(app.server_options)
      @native.use_redis(app.broker, app.method(:broker_state)) if app.broker
      app.histories.each { |pattern, keep, ttl_ms| @native.topic_history(pattern, keep, ttl_ms) }
      app.endpoints.each do |ep|
        @native.add_endpoint(ep.path, Handler.new(ep, self), ep.native_options)
      end
      @native.set_metrics(app.metrics_path, app.health_path) if app.metrics_path || app.health_path
      # Core events are built only when the logger takes INFO.
      @native.set_log(app.method(:log_event), 20) if app.logger&.info?
      if tls
        @native.listen_tls(host, port, TLS.rows(tls), TLS.ca(tls))
      else
        @native.listen(host, port)
      end
      @tls = !tls.nil?
      @metrics_port = app.metrics_port && @native.listen_metrics(host, app.metrics_port)
      @host = host
      @port = @native.port
      @io = IO.for_fd(@native.fd, autoclose: false)
      @wake_r, @wake_w = IO.pipe
      @wake_fd = @wake_r.fileno
      @wake_wfd = @wake_w.fileno
      @deferred = []
      @timers = []
      @stop = false
      @drain = false
      trap_hup if Native.worker_index >= 0
    end

    # The broker's counters ({state:, published:, dropped:, ...}), or nil.
    def broker_stats = @native.broker_stats

    # The rendered counters: 0 Prometheus text, 1 JSON.
    def metrics(format) = @native.metrics(format)

    # True once the shutdown has finished.
    def closed? = @native.closed?

    # From any thread: stop accepting (what waits in the backlog is served),
    # finish the open connections, then shut down; #run returns once done.
    def drain
      @drain = true
      wake
    end

    # True when serving wss://.
    def tls? = @tls

    # New certificate/key (same shape as run's tls:) for new connections;
    # open ones keep theirs. Raises ConfigError and keeps the old ones when
    # they do not load.
    def reload_tls(tls) = @native.tls_reload(TLS.rows(tls), TLS.ca(tls))

    # Sessions to start once the current process call has returned.
    def defer(session) = @deferred << session

    # Drive the server until it has shut down. Interrupt (Ctrl-C) and
    # SignalException (SIGTERM) start a graceful shutdown: every connection
    # closes with 1001, then #run returns.
    def run
      @thread = Thread.current
      @scheduled = !Fiber.scheduler.nil? && Fiber.blocking? == false
      begin
        drive
      rescue Interrupt, SignalException
        shutdown
        drive
      rescue Exception => e # rubocop:disable Lint/RescueException
        # SystemExit from a handler, or anything else that got this far: the
        # clients still get their 1001 before it goes on up.
        close_quietly
        raise e
      end
    ensure
      @wake_r.close
      @wake_w.close
    end

    # From any thread: shut down gracefully; #run returns once done.
    def stop
      @stop = true
      wake
    end

    # Make a waiting #run look at the core again.
    def wake
      @wake_w.write_nonblock(".", exception: false)
    rescue IOError
      nil
    end

    def loop_thread? = Thread.current.equal?(@thread)
    def connection_count = @native.connection_count
    def subscriber_count(topic) = @native.subscriber_count(topic)
    def topic_history(pattern, keep, ttl_ms) = @native.topic_history(pattern, keep, ttl_ms)

    # From any thread (like a send): publish, then let the loop flush.
    def publish(topic, message, exclude)
      @native.publish(topic, message, exclude)
    ensure
      wake unless loop_thread?
    end
    def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    # Call blk on the loop thread at monotonic time `at` (see #now).
    def add_timer(at, &blk)
      timer = [at, blk]
      index = @timers.bsearch_index { |t| t[0] > at } || @timers.size
      @timers.insert(index, timer)
      timer
    end

    def cancel_timer(timer)
      timer[1] = nil
    end

    private

    def drive
      loop do
        alive = @native.process
        start_deferred unless @deferred.empty?
        fire_timers unless @timers.empty?
        return unless alive

        shutdown if @stop
        drain_now if @drain
        wait(next_timeout)
      end
    end

    def start_deferred
      sessions = @deferred
      @deferred = []
      sessions.each(&:start_once)
    end

    def fire_timers
      t = now
      while (first = @timers.first) && (first[1].nil? || first[0] <= t)
        @timers.shift
        first[1]&.call
      end
    end

    # Milliseconds: the core's timeout, shortened by the next timer of ours.
    def next_timeout
      ms = @native.timeout
      @timers.shift while @timers.first && @timers.first[1].nil?
      return ms if @timers.empty?

      due = [((@timers.first[0] - now) * 1000).ceil, 0].max
      ms.negative? ? due : [ms, due].min
    end

    def wait(timeout_ms)
      return if timeout_ms.zero?

      timeout = timeout_ms.negative? ? nil : timeout_ms / 1000.0
      return @io.wait_readable(timeout) if @scheduled

      @native.wait(timeout_ms, @wake_fd, @wake_wfd)
    end

    def shutdown
      @native.shutdown(@app.shutdown_timeout_ms)
    end

    def drain_now
      @drain = false
      @native.drain(30_000)
    rescue Error
      nil # already draining or shutting down
    end

    # In a worker: SIGHUP is the supervisor's rolling replace.
    def trap_hup
      trap("HUP") { drain }
    end

    def close_quietly
      shutdown
      drive
    rescue Exception # rubocop:disable Lint/RescueException
      nil
    end
  end
end

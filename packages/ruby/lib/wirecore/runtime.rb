# frozen_string_literal: true

require "io/wait"

module Wirecore
  # A running server: the core on its own loop, driven by the thread that
  # calls #run (DESIGN.md §4). The thread waits on the core's fd with the GVL
  # released (IO#wait_readable, which also cooperates with a fiber
  # scheduler), processes with the GVL held, and asks for the timeout again
  # after every process call (0: process again now, -1: the fd only).
  class Runtime
    attr_reader :port, :host

    def initialize(app, host:, port:, background: false)
      @app = app
      @native = Native::Server.new(app.server_options)
      app.endpoints.each do |ep|
        @native.add_endpoint(ep.path, Handler.new(ep, self), ep.native_options)
      end
      @native.listen(host, port)
      @host = host
      @port = @native.port
      @io = IO.for_fd(@native.fd, autoclose: false)
      @deferred = []
      @stop = false
      @wake_r, @wake_w = IO.pipe if background
    end

    # Sessions to start once the current process call has returned.
    def defer(session) = @deferred << session

    # Drive the server until it has shut down. Interrupt (Ctrl-C) and
    # SignalException (SIGTERM) start a graceful shutdown: every connection
    # closes with 1001, then #run returns.
    def run
      begin
        drive
      rescue Interrupt, SignalException
        shutdown
        drive
      end
    ensure
      finish
    end

    # From any thread: ask #run to shut down gracefully and return.
    def stop
      @stop = true
      @wake_w&.write_nonblock(".", exception: false)
    end

    def connection_count = @native.connection_count

    private

    def drive
      loop do
        alive = @native.process
        start_deferred unless @deferred.empty?
        return unless alive

        shutdown if @stop
        wait(@native.timeout)
      end
    end

    def start_deferred
      sessions = @deferred
      @deferred = []
      sessions.each(&:start_once)
    end

    def wait(timeout_ms)
      return if timeout_ms.zero?

      timeout = timeout_ms.negative? ? nil : timeout_ms / 1000.0
      if @wake_r
        ready = IO.select([@io, @wake_r], nil, nil, timeout)
        @wake_r.read_nonblock(64, exception: false) if ready && ready[0].include?(@wake_r)
      else
        @io.wait_readable(timeout)
      end
    end

    def shutdown
      @native.shutdown(@app.shutdown_timeout_ms)
    end

    def finish
      @wake_r&.close
      @wake_w&.close
    end
  end
end

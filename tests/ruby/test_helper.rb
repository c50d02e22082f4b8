# frozen_string_literal: true

# Shared setup for the Ruby suite: loads the gem (from packages/ruby/lib, or
# the installed gem when WIRECORE_USE_INSTALLED=1), minitest, and a real
# client built on Debian's `websocket` gem, which nobody here wrote.
unless ENV["WIRECORE_USE_INSTALLED"] == "1"
  $LOAD_PATH.unshift(File.expand_path("../../packages/ruby/lib", __dir__))
end
require "minitest/autorun"
require "socket"
require "tmpdir"
require "timeout"
require "json"
require "websocket"
require "wirecore"

QUIET = Logger.new(ENV["WIRECORE_TEST_LOG"] ? $stderr : nil)

ECHO_SCHEMA = {
  "type" => "object",
  "properties" => { "text" => { "type" => "string" } },
  "required" => ["text"]
}.freeze

# WebSocket::Handshake::Client + WebSocket::Frame over a TCPSocket.
class RealClient
  attr_reader :handshake

  # local_host: the address the client's socket is bound to (127.0.0.x)
  def initialize(port, path, headers: {}, protocols: nil, origin: nil, timeout: 5, local_host: nil)
    @timeout = timeout
    @sock = TCPSocket.new("127.0.0.1", port, local_host)
    args = { url: "ws://127.0.0.1:#{port}#{path}", headers: headers }
    args[:protocols] = protocols if protocols
    args[:origin] = origin if origin
    @handshake = WebSocket::Handshake::Client.new(**args)
    @sock.write(@handshake.to_s)
    deadline = now + timeout
    @handshake << read_some(deadline) until @handshake.finished?
    @incoming = WebSocket::Frame::Incoming::Client.new(version: @handshake.version)
    @incoming << @handshake.leftovers.to_s if @handshake.valid?
  end

  def valid? = @handshake.valid?
  # The HTTP status of a refused handshake (the gem keeps only validity).
  def status_line = @handshake.instance_variable_get(:@data).to_s.lines.first.to_s

  def send_frame(data, type: :text, code: nil)
    frame = WebSocket::Frame::Outgoing::Client.new(version: @handshake.version, data: data, type: type,
                                                   code: code)
    @sock.write(frame.to_s)
  end

  def send_text(str) = send_frame(str, type: :text)
  def send_binary(str) = send_frame(str, type: :binary)

  # The next frame (text, binary, close, ping, pong) or raises on timeout.
  def receive(timeout: @timeout)
    deadline = now + timeout
    loop do
      frame = @incoming.next
      return frame if frame

      @incoming << read_some(deadline)
    end
  end

  def receive_data(**kw)
    loop do
      frame = receive(**kw)
      return frame unless %i[ping pong].include?(frame.type)
    end
  end

  def close = @sock.close

  # True when the server closed the TCP connection (reads return EOF).
  def eof?(timeout: @timeout)
    read_some(now + timeout)
    false
  rescue EOFError, Errno::ECONNRESET
    true
  end

  private

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def read_some(deadline)
    loop do
      chunk = @sock.read_nonblock(65_536, exception: false)
      raise EOFError if chunk.nil?
      return chunk unless chunk == :wait_readable

      left = deadline - now
      raise Timeout::Error, "no data from the server" if left <= 0 || !@sock.wait_readable(left)
    end
  end
end

module ServerHelpers
  # Start app in the background for the block; yields the port.
  def serving(app)
    runtime, thread = app.start
    yield runtime.port, runtime
  ensure
    if runtime
      runtime.stop
      thread.join(10) or flunk("server thread did not stop")
    end
  end

  def new_app(**opts) = Wirecore::App.new(logger: QUIET, **opts)

  def wait_until(timeout = 5)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    until yield
      flunk("condition not met in #{timeout}s") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.01
    end
  end

  # A TCP port on 127.0.0.1 that was free a moment ago (for servers started
  # as processes; an app started in the test binds port 0 itself).
  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  # A real redis-server on a free port, without persistence, for the block;
  # yields its "redis://127.0.0.1:PORT/0" URL once it accepts, then kills it.
  def with_redis
    port = free_port
    pid = spawn("redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", out: File::NULL, err: File::NULL)
    wait_until do
      TCPSocket.new("127.0.0.1", port).close || true
    rescue Errno::ECONNREFUSED
      false
    end
    yield "redis://127.0.0.1:#{port}/0"
  ensure
    if pid
      Process.kill("KILL", pid)
      Process.wait(pid)
    end
  end

  # An echo app (Wirecore::App.new(**options), /echo) run with
  # app.run(workers: 2) in a ruby process of its own: yields its port, pid
  # and log file; then stops it with TERM, asserts it exited 0 and returns
  # the log.
  def with_workers_echo(**options)
    port = free_port
    Dir.mktmpdir do |dir|
      script = File.join(dir, "served.rb")
      File.write(script, <<~RUBY)
        $LOAD_PATH.unshift(#{File.expand_path('../../packages/ruby/lib', __dir__).inspect}) unless ENV["WIRECORE_USE_INSTALLED"] == "1"
        require "wirecore"
        app = Wirecore::App.new(**#{options.inspect})
        app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m.data }) }
        app.run(port: #{port}, workers: 2)
      RUBY
      log = File.join(dir, "log")
      pid = spawn("ruby", script, out: log, err: log)
      begin
        yield port, pid, log
      ensure
        Process.kill("TERM", pid)
        _, status = Process.wait2(pid)
      end
      text = File.read(log)
      assert status.success?, text
      text
    end
  end
end

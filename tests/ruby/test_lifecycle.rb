# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# Running, shutting down, and the lifetime of wrapped objects.
class TestLifecycle < Minitest::Test
  include ServerHelpers

  LIB = File.expand_path("../../packages/ruby/lib", __dir__)

  # A test run started in the background (CI, `cmd &`) ignores SIGINT, and
  # Ruby keeps an inherited SIG_IGN: give the server Ruby's own INT handling.
  SERVER_SCRIPT = <<~RUBY
    trap("INT", "DEFAULT")
    require "wirecore"
    $stdout.sync = true
    app = Wirecore::App.new
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    app.run(host: "127.0.0.1", port: 0) { |rt| puts "PORT \#{rt.port}" }
    puts "STOPPED"
  RUBY

  def spawn_server
    args = ENV["WIRECORE_USE_INSTALLED"] == "1" ? [] : ["-I", LIB]
    io = IO.popen([RbConfig.ruby, *args, "-e", SERVER_SCRIPT], "r+", err: File::NULL)
    line = Timeout.timeout(10) { io.gets }
    assert_match(/\APORT \d+/, line)
    [io, Integer(line.split.last)]
  end

  %w[TERM INT].each do |sig|
    define_method("test_sig#{sig.downcase}_closes_connections_with_1001_and_exits") do
      io, port = spawn_server
      c = RealClient.new(port, "/echo")
      c.send_text("x")
      assert_equal "x", c.receive_data.data
      Process.kill(sig, io.pid)
      frame = c.receive_data(timeout: 5)
      assert_equal :close, frame.type
      assert_equal 1001, frame.code
      c.send_frame("", type: :close, code: 1001)
      assert_equal "STOPPED\n", Timeout.timeout(10) { io.gets }
      _, status = Timeout.timeout(10) { Process.wait2(io.pid) }
      assert status.success?
    ensure
      c&.close
      reap(io)
    end
  end

  # Close the server's pipe without hanging the run: IO#close waits for the
  # child, so one that failed to stop is killed first (its test has failed).
  def reap(io)
    return unless io

    begin
      Timeout.timeout(10) { Process.wait(io.pid) }
    rescue Timeout::Error
      Process.kill(:KILL, io.pid)
    rescue Errno::ECHILD
      nil
    end
    io.close
  end

  # Not a StandardError, so no handler takes it (like SystemExit, which Ruby
  # would also forward to the main thread and so end the test run).
  class Fatal < Exception; end # rubocop:disable Lint/InheritException

  def test_fatal_exception_in_a_handler_still_closes_clients_with_1001
    app = new_app
    app.websocket("/bye") { Wirecore::WebSocketResponse.new(on_message: ->(_m) { raise Fatal, "stop" }) }
    runtime, thread = app.start
    client = Wirecore::TestClient.new("127.0.0.1", runtime.port)
    other = client.websocket("/bye")
    client.websocket("/bye") do |ws|
      ws.send_text("x")
      assert_equal 1001, other.wait_closed
    end
    assert_raises(Fatal) { thread.join(10) }
  end

  def test_connection_kept_past_the_server_raises_connection_closed
    kept = Queue.new
    app = new_app
    app.websocket("/keep", stream: true) do |ws|
      kept << ws
      nil while ws.receive
    end
    app.test_client do |client|
      client.websocket("/keep") { |ws| ws.send_text("x") }
    end
    ws = kept.pop
    assert ws.closed?
    assert_raises(Wirecore::ConnectionClosedError) { ws.send_text("late") }
  end

  def test_send_after_close_raises_connection_closed_error
    result = Queue.new
    app = new_app
    app.websocket("/late", stream: true) do |ws|
      nil while ws.receive
      begin
        ws.send_text("too late")
        result << :sent
      rescue Wirecore::ConnectionClosedError => e
        result << e
      end
    end
    app.test_client do |client|
      client.websocket("/late") { |ws| ws.send_text("x") }
    end
    assert_kind_of Wirecore::ConnectionClosedError, result.pop
  end

  def test_survives_gc_compaction_while_serving
    app = new_app
    app.websocket("/gc") do
      Wirecore::WebSocketResponse.new(on_message: lambda { |m|
        GC.compact
        m
      })
    end
    app.test_client do |client|
      client.websocket("/gc") do |ws|
        10.times do |i|
          ws.send_json(i: i, s: "x" * i)
          assert_equal({ "i" => i, "s" => "x" * i }, ws.receive_json)
        end
      end
    end
  end

  def test_gc_stress_during_a_short_session
    app = new_app
    app.websocket("/stress", message_schema: { "type" => "object" }) { |m, ctx| { "p" => ctx.params, "m" => m } }
    app.test_client do |client|
      client.websocket("/stress") do |ws|
        GC.stress = true
        ws.send_json(a: [1, { b: "c" }])
        reply = ws.receive_json(timeout: 30)
        GC.stress = false
        assert_equal({ "p" => {}, "m" => { "a" => [1, { "b" => "c" }] } }, reply)
      end
    end
  ensure
    GC.stress = false
  end

  def test_servers_can_run_one_after_another
    3.times do
      app = new_app
      app.websocket("/e") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
      app.test_client { |c| c.websocket("/e") { |ws| ws.send_text("a") && nil; assert_equal "a", ws.receive_text } }
    end
  end

  def test_port_in_use_raises_listen_error
    app = new_app
    app.websocket("/e") { Wirecore::WebSocketResponse.new }
    serving(app) do |port|
      other = new_app
      other.websocket("/e") { Wirecore::WebSocketResponse.new }
      assert_raises(Wirecore::ListenError) { other.run(host: "127.0.0.1", port: port) }
    end
  end

  def test_unhandled_exceptions_are_logged
    out = StringIO.new
    app = Wirecore::App.new(logger: Logger.new(out))
    app.websocket("/log") { Wirecore::WebSocketResponse.new(on_message: ->(_m) { raise "logged boom" }) }
    app.test_client do |client|
      client.websocket("/log") do |ws|
        ws.send_text("x")
        ws.wait_closed
      end
    end
    assert_includes out.string, "logged boom"
  end
end

# frozen_string_literal: true

# Metrics, health and logs (docs/operations.md): /metrics and /health over
# real HTTP against traffic made here, app.stats, health 503 while draining
# on a metrics port, the merged view of app.run(workers: 2), and the core's
# connection events in the app's Logger.
require_relative "test_helper"
require "net/http"
require "stringio"

class TestMetrics < Minitest::Test
  include ServerHelpers

  def echo_app(logger: QUIET, **options)
    app = Wirecore::App.new(logger: logger, **options)
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m.data }) }
    app
  end

  def get(port, path)
    Net::HTTP.start("127.0.0.1", port) { |http| http.get(path) }
  end

  # The value of one sample line: `name{labels} value`.
  def sample(text, series)
    line = text.lines.find { |l| l.start_with?("#{series} ") }
    line && line.split(" ").last.to_f
  end

  def test_metrics_count_the_traffic_exactly
    app = echo_app(metrics_path: "/metrics", health_path: "/health")
    serving(app) do |port|
      3.times do |i|
        c = RealClient.new(port, "/echo")
        4.times do
          c.send_text("hello")
          assert_equal "hello", c.receive_data.data
        end
        c.send_frame("", type: :close, code: i == 2 ? 4001 : 1000)
        c.eof?
        c.close
      end
      wait_until { app.stats["connections"].zero? }
      r = get(port, "/metrics")
      assert_equal "200", r.code
      assert_equal "text/plain; version=0.0.4; charset=utf-8", r["Content-Type"]
      assert_equal 3, sample(r.body, 'wirecore_connections_total{path="/echo"}')
      assert_equal 12, sample(r.body, 'wirecore_messages_received_total{path="/echo"}')
      assert_equal 60, sample(r.body, 'wirecore_received_bytes_total{path="/echo"}')
      assert_equal 60, sample(r.body, 'wirecore_sent_bytes_total{path="/echo"}')
      assert_equal 2, sample(r.body, 'wirecore_connections_closed_total{path="/echo",code="1000"}')
      assert_equal 1, sample(r.body, 'wirecore_connections_closed_total{path="/echo",code="app"}')
      assert_equal 12, sample(r.body, 'wirecore_handler_duration_seconds_count{path="/echo"}')
      stats = app.stats
      assert_equal 3, stats["connections_total"]
      assert_equal({ "1000" => 2, "app" => 1 }, stats["endpoints"]["/echo"]["close_codes"])
      assert_nil stats["broker"]
      h = get(port, "/health")
      assert_equal "200", h.code
      assert_equal({ "status" => "ok", "connections" => 0, "broker" => "none" }, JSON.parse(h.body))
    end
    assert_nil app.stats
  end

  def test_a_metrics_port_answers_503_while_draining
    app = echo_app(metrics_port: 0)
    runtime, thread = app.start
    mport = runtime.metrics_port
    assert mport.positive?
    refute_equal runtime.port, mport
    c = RealClient.new(runtime.port, "/echo")
    assert_equal "200", get(mport, "/health").code
    assert_equal "404", get(mport, "/echo").code
    assert_equal "400", get(runtime.port, "/metrics").code
    runtime.drain
    wait_until { get(mport, "/health").code == "503" }
    assert_equal({ "status" => "draining", "connections" => 1, "broker" => "none" },
                 JSON.parse(get(mport, "/health").body))
    c.send_text("still")
    assert_equal "still", c.receive_data.data
    c.close
    thread.join(10) or flunk("the drain did not finish")
  end

  def test_connection_events_reach_the_logger
    out = StringIO.new
    app = echo_app(logger: Logger.new(out, level: Logger::INFO))
    serving(app) do |port|
      c = RealClient.new(port, "/echo")
      c.send_text("abc")
      c.receive_data.data
      c.send_frame("", type: :close, code: 1000)
      c.eof?
      c.close
      refute RealClient.new(port, "/missing").valid?
      wait_until { out.string.include?("code=1000") && out.string.include?("status=404") }
    end
    text = out.string
    assert_match(/INFO -- : wirecore: open 127\.0\.0\.1:\d+ \/echo/, text)
    assert_match(%r{wirecore: close 127\.0\.0\.1:\d+ /echo code=1000 duration=\d+\.\d+s in=3B out=3B}, text)
    assert_match(%r{wirecore: reject 127\.0\.0\.1:\d+ /missing status=404}, text)
  end

  def test_a_quiet_logger_gets_no_events
    out = StringIO.new
    app = echo_app(logger: Logger.new(out, level: Logger::WARN))
    serving(app) do |port|
      c = RealClient.new(port, "/echo")
      c.send_text("abc")
      c.receive_data.data
      c.close
    end
    refute_includes out.string, "wirecore: open"
  end

  def test_workers_report_one_merged_view
    with_workers_echo(metrics_path: "/metrics") do |port, _pid, log|
      wait_until(15) { File.read(log).scan("started").size == 2 }
      wait_until(10) { (TCPSocket.new("127.0.0.1", port).close || true) rescue false }
      sleep 0.3
      20.times do
        c = RealClient.new(port, "/echo")
        c.send_text("hi")
        assert_equal "hi", c.receive_data.data
        c.close
      end
      6.times do
        body = get(port, "/metrics").body
        assert_equal 2, sample(body, "wirecore_workers")
        assert_equal 20, sample(body, 'wirecore_connections_total{path="/echo"}')
        assert_equal 20, sample(body, 'wirecore_messages_received_total{path="/echo"}')
      end
    end
  end
end

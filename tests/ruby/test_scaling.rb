# frozen_string_literal: true

# App.new(broker:) against a real redis-server, and app.run(workers:) as a
# real supervisor with worker processes (docs/scaling.md).
require_relative "test_helper"

class TestScaling < Minitest::Test
  include ServerHelpers

  def echo_app(**options)
    app = Wirecore::App.new(**options)
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m.data }) }
    app
  end

  def test_broker_connects_and_logs_each_state_change_once
    with_redis do |url|
      log = StringIO.new
      app = echo_app(broker: url, logger: Logger.new(log, level: Logger::INFO))
      runtime, thread = app.start
      wait_until { runtime.broker_stats&.fetch(:state) == :up }
      assert_equal 0, runtime.broker_stats[:dropped]
      client = RealClient.new(runtime.port, "/echo")
      client.send_text("hi")
      assert_equal "hi", client.receive_data.data
      client.close
      runtime.stop
      thread.join(10)
      assert_equal 1, log.string.scan("wirecore: broker: connected to Redis at 127.0.0.1:").size, log.string
    end
  end

  def test_a_bad_broker_url_is_refused_with_the_reason
    app = echo_app(broker: "http://127.0.0.1")
    error = assert_raises(Wirecore::Error) { app.start }
    assert_match(/redis:\/\//, error.message)
    assert_nil echo_app.broker
  end

  def children(pid)
    File.read("/proc/#{pid}/task/#{pid}/children").split.map(&:to_i)
  rescue Errno::ENOENT
    []
  end

  def echo_once(port)
    client = RealClient.new(port, "/echo")
    client.send_text("hi")
    client.receive_data.data
  ensure
    client&.close
  end

  def test_run_with_workers_supervises_processes_that_share_the_port
    text = with_workers_echo do |port, pid, log|
      wait_until(15) { children(pid).size == 2 && File.read(log).scan("started").size == 2 }
      wait_until(10) { (echo_once(port) rescue nil) == "hi" }
      before = children(pid)
      10.times { assert_equal "hi", echo_once(port) }
      Process.kill("KILL", before[0])
      wait_until { children(pid).size == 2 && !children(pid).include?(before[0]) }
      assert_includes children(pid), before[1]
      Process.kill("HUP", pid)
      assert_equal "hi", echo_once(port) until File.read(log).include?("all 2 workers replaced")
      wait_until(10) { children(pid).size == 2 && (children(pid) & before).empty? }
      assert_equal "hi", echo_once(port)
    end
    assert_includes text, "was killed by signal 9; restarting"
    assert_includes text, "all workers stopped"
  end
end

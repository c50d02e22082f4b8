# frozen_string_literal: true

require_relative "test_helper"

# A minimal Fiber::Scheduler (io_wait, kernel_sleep, block/unblock) built on
# IO.select, enough to show that a running app yields to other fibers of its
# thread while it waits for the network.
class ToyScheduler
  def initialize
    @readable = {}
    @timers = {}
    @ready = []
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def fiber(&block)
    Fiber.new(blocking: false, &block).tap(&:resume)
  end

  def io_wait(io, events, timeout)
    fiber = Fiber.current
    @readable[io] = fiber
    @timers[fiber] = now + timeout if timeout
    Fiber.yield
  ensure
    @readable.delete(io)
    @timers.delete(fiber)
  end

  def kernel_sleep(duration = nil)
    @timers[Fiber.current] = now + duration if duration
    Fiber.yield
    true
  end

  def block(_blocker, timeout = nil)
    @timers[Fiber.current] = now + timeout if timeout
    Fiber.yield
  end

  def unblock(_blocker, fiber)
    @ready << fiber
  end

  def close = run

  def run
    until @readable.empty? && @timers.empty? && @ready.empty?
      wake = @timers.values.min
      timeout = wake ? [wake - now, 0].max : nil
      timeout = 0 unless @ready.empty?
      readable, = IO.select(@readable.keys, nil, nil, timeout)
      readable&.each { |io| (f = @readable[io]) && f.resume(IO::READABLE) }
      @timers.select { |_, at| at <= now }.each_key { |f| @timers.delete(f) && f.resume(false) }
      @ready.shift.resume until @ready.empty?
    end
  end
end

class TestFiberScheduler < Minitest::Test
  include ServerHelpers

  def test_run_waits_through_the_fiber_scheduler_so_other_fibers_keep_running
    started = Queue.new
    ticks = 0
    runtime = nil
    app = new_app
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    app.websocket("/stop") do
      Wirecore::WebSocketResponse.new(on_message: ->(_m) { runtime.stop && nil })
    end
    thread = Thread.new do
      Fiber.set_scheduler(ToyScheduler.new)
      Fiber.schedule do
        app.run(host: "127.0.0.1", port: 0) do |rt|
          runtime = rt
          started << rt.port
        end
      end
      Fiber.schedule { 30.times { sleep 0.01; ticks += 1 } }
    end
    port = Timeout.timeout(10) { started.pop }
    client = Wirecore::TestClient.new("127.0.0.1", port)
    client.websocket("/echo") do |ws|
      ws.send_text("through the scheduler")
      assert_equal "through the scheduler", ws.receive_text
    end
    wait_until { ticks == 30 }
    stopper = client.websocket("/stop")
    stopper.send_text("stop")
    assert_equal 1001, stopper.wait_closed
    assert thread.join(10), "the scheduled server did not return"
  end
end

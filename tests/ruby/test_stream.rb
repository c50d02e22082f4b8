# frozen_string_literal: true

require_relative "test_helper"

# Stream style: the block owns the connection in its own Fiber.
class TestStreamStyle < Minitest::Test
  include ServerHelpers

  def feed_app
    app = new_app
    app.websocket("/feed", stream: true) do |ws|
      ws.send_json(hello: ws.request.query["user"])
      ws.each do |msg|
        break ws.close(4002, "bye") if msg.as_text == "bye"

        ws.send(msg)
      end
    end
    app
  end

  def test_block_pushes_first_then_echoes_each_message
    feed_app.test_client do |client|
      client.websocket("/feed?user=ann") do |ws|
        assert_equal({ "hello" => "ann" }, ws.receive_json)
        ws.send_text("one")
        assert_equal "one", ws.receive_text
        ws.send_binary("\x02".b)
        assert_equal "\x02".b, ws.receive.as_binary
        ws.send_text("bye")
        assert_equal 4002, ws.wait_closed
      end
    end
  end

  def test_waiting_connections_do_not_block_each_other
    feed_app.test_client do |client|
      a = client.websocket("/feed?user=a")
      b = client.websocket("/feed?user=b")
      a.receive_json
      b.receive_json
      b.send_text("b first")
      assert_equal "b first", b.receive_text
      a.send_text("a later")
      assert_equal "a later", a.receive_text
      a.close
      b.close
    end
  end

  def test_block_return_closes_with_1000
    app = new_app
    app.websocket("/once", stream: true) { |ws| ws.send_text("only #{ws.receive.as_text}") }
    app.test_client do |client|
      client.websocket("/once") do |ws|
        ws.send_text("x")
        assert_equal "only x", ws.receive_text
        assert_equal 1000, ws.wait_closed
      end
    end
  end

  def test_receive_returns_nil_after_the_client_closes
    done = Queue.new
    app = new_app
    app.websocket("/drain", stream: true) do |ws|
      count = 0
      count += 1 while ws.receive
      done << [count, ws.close_code]
    end
    app.test_client do |client|
      ws = client.websocket("/drain")
      3.times { |i| ws.send_text(i.to_s) }
      ws.close(1000)
    end
    assert_equal [3, 1000], done.pop
  end

  def test_exception_in_the_block_closes_with_1011
    app = new_app
    app.websocket("/bad", stream: true) { |ws| raise "boom" if ws.receive }
    app.test_client do |client|
      client.websocket("/bad") do |ws|
        ws.send_text("x")
        assert_equal 1011, ws.wait_closed
      end
    end
  end

  def test_on_error_takes_stream_exceptions
    app = new_app
    app.websocket("/handled", stream: true, on_error: ->(e, _ws) { "handled: #{e.message}" }) do |ws|
      raise "boom" if ws.receive
    end
    app.test_client do |client|
      client.websocket("/handled") do |ws|
        ws.send_text("x")
        assert_equal "handled: boom", ws.receive_text
      end
    end
  end

  def test_receive_with_a_timeout_returns_nil_and_lets_the_block_push
    app = new_app
    app.websocket("/ticks", stream: true) do |ws|
      ticks = 0
      while ticks < 3
        msg = ws.receive(timeout: 0.05)
        msg ? ws.send(msg) : ws.send_json(tick: ticks += 1)
      end
    end
    app.test_client do |client|
      client.websocket("/ticks") do |ws|
        assert_equal({ "tick" => 1 }, ws.receive_json)
        assert_equal({ "tick" => 2 }, ws.receive_json)
        assert_equal({ "tick" => 3 }, ws.receive_json)
        assert_equal 1000, ws.wait_closed
      end
    end
  end

  def test_sleep_does_not_block_other_connections
    app = new_app
    app.websocket("/slow", stream: true) do |ws|
      ws.sleep(0.3)
      ws.send_text("woke")
      ws.receive # the message sent while sleeping waited in order
      ws.send_text("then got it")
      ws.receive
    end
    app.websocket("/fast") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    app.test_client do |client|
      slow = client.websocket("/slow")
      slow.send_text("early")
      t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      client.websocket("/fast") do |fast|
        fast.send_text("quick")
        assert_equal "quick", fast.receive_text
      end
      assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0, :<, 0.25
      assert_equal "woke", slow.receive_text
      assert_equal "then got it", slow.receive_text
      slow.close
    end
  end

  def test_sends_from_another_thread_reach_the_client
    streams = Queue.new
    app = new_app
    app.websocket("/push", stream: true) do |ws|
      streams << ws
      nil while ws.receive
    end
    app.test_client do |client|
      client.websocket("/push") do |ws|
        stream = streams.pop
        Thread.new { 3.times { |i| stream.send_json(n: i) } }.join
        assert_equal [0, 1, 2], Array.new(3) { ws.receive_json["n"] }
      end
    end
  end
end

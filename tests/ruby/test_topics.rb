# frozen_string_literal: true

require_relative "test_helper"

# Topics: subscribe / unsubscribe / topics on every connection object,
# App#publish and App#subscriber_count, against the `websocket` gem over
# real sockets.
class TestTopics < Minitest::Test
  include ServerHelpers

  # /room/{name}: "say:x" publishes to the others, "me:x" to all, "order"
  # mixes direct sends and publishes, "leave" unsubscribes.
  def room_app
    app = new_app
    app.websocket("/room/{name}", stream: true) do |ws|
      name = ws.request.params["name"]
      ws.subscribe(name)
      ws.send_text("joined:#{ws.topics.join(',')}")
      while (msg = ws.receive)
        text = msg.as_text
        if text.start_with?("say:")
          n = app.publish(name, text[4..], exclude: ws)
          ws.send_text("sent:#{n}")
        elsif text.start_with?("me:")
          app.publish(name, text[3..])
        elsif text == "order"
          5.times do |i|
            ws.send_text("direct#{i}")
            app.publish(name, "pub#{i}")
          end
        elsif text == "leave"
          first = ws.unsubscribe(name)
          second = ws.unsubscribe(name)
          ws.send_text("left:#{first}:#{second}:#{ws.topics.inspect}")
        end
      end
    end
    app
  end

  def joined(port, path)
    c = RealClient.new(port, path)
    assert c.valid?
    assert c.receive_data.data.start_with?("joined:")
    c
  end

  def assert_silent_for(client, seconds = 0.2)
    assert_raises(Timeout::Error) { client.receive_data(timeout: seconds) }
  end

  def test_publish_reaches_every_subscriber_but_the_excluded_one
    app = room_app
    serving(app) do |port, _|
      a = joined(port, "/room/lobby")
      b = joined(port, "/room/lobby")
      c = joined(port, "/room/other")
      assert_equal 2, app.subscriber_count("lobby")
      a.send_text("say:hello")
      assert_equal "sent:1", a.receive_data.data
      assert_equal "hello", b.receive_data.data
      a.send_text("me:all")
      assert_equal "all", a.receive_data.data
      assert_equal "all", b.receive_data.data
      assert_silent_for(c)
      [a, b, c].each(&:close)
    end
  end

  def test_publishes_and_direct_sends_keep_their_order
    serving(room_app) do |port, _|
      a = joined(port, "/room/o")
      a.send_text("order")
      got = Array.new(10) { a.receive_data.data }
      assert_equal((0...5).flat_map { |i| ["direct#{i}", "pub#{i}"] }, got)
      a.close
    end
  end

  def test_unsubscribe_and_close_end_subscriptions
    app = room_app
    serving(app) do |port, _|
      a = joined(port, "/room/u")
      b = joined(port, "/room/u")
      a.send_text("leave")
      assert_equal "left:true:false:[]", a.receive_data.data
      assert_equal 1, app.subscriber_count("u")
      assert_equal 1, app.publish("u", "after")
      assert_equal "after", b.receive_data.data
      assert_silent_for(a)
      b.close
      wait_until { app.subscriber_count("u").zero? }
      assert_equal 0, app.publish("u", "nobody")
      a.close
    end
  end

  def test_publish_to_no_subscribers_and_bad_topics
    app = room_app
    assert_equal 0, app.publish("x", "before start")
    assert_raises(Wirecore::ConfigError) { app.publish("", "x") }
    serving(app) do |_port, _|
      assert_equal 0, app.publish("nobody", "hi")
      assert_equal 0, app.publish("nobody", { "a" => 1 })
      assert_equal 0, app.subscriber_count("nobody")
      assert_raises(Wirecore::ConfigError) { app.publish("", "x") }
      assert_raises(Wirecore::ConfigError) { app.publish("t" * 257, { "a" => 1 }) }
      assert_raises(Wirecore::ConfigError) { app.subscriber_count("") }
      assert_raises(TypeError) { app.publish(:sym, "x") }
    end
  end

  # Serve /s, where the block runs on the connection, then "done" goes out;
  # returns once a real client got it.
  def on_a_connection(app)
    app.websocket("/s", stream: true) do |ws|
      yield ws
      ws.send_text("done")
      nil while ws.receive
    end
    serving(app) do |port, _|
      c = RealClient.new(port, "/s")
      assert_equal "done", c.receive_data.data
      c.close
    end
  end

  def test_bad_topics_raise_on_subscribe_and_the_topic_limit_holds
    seen = Queue.new
    on_a_connection(new_app) do |ws|
      ["", "x" * 257].each do |topic|
        ws.subscribe(topic)
      rescue Wirecore::ConfigError => e
        seen << e.class.name
      end
      ws.subscribe("x" * 256)
      ws.subscribe("x" * 256)
      begin
        2000.times { |i| ws.subscribe("t#{i}") }
      rescue Wirecore::ConfigError => e
        seen << [ws.topics.size, e.message.include?("too many topics")]
      end
    end
    assert_equal ["Wirecore::ConfigError", "Wirecore::ConfigError", [1024, true]], Array.new(3) { seen.pop }
  end

  def test_max_topics_per_conn_sets_the_topic_limit
    seen = Queue.new
    on_a_connection(new_app(max_topics_per_conn: 3)) do |ws|
      %w[a b c a].each { |t| ws.subscribe(t) } # a second "a" is the same subscription
      begin
        ws.subscribe("d")
      rescue Wirecore::ConfigError => e
        seen << [ws.topics.size, e.message.include?("too many topics")]
      end
      ws.unsubscribe("a")
      ws.subscribe("d") # room again
      seen << ws.topics.sort
    end
    assert_equal [[3, true], %w[b c d]], Array.new(2) { seen.pop }
    assert_raises(Wirecore::ConfigError) { Wirecore::App.new(max_topics_per_conn: -1) }
  end

  def test_publish_from_another_thread_outside_any_handler
    app = new_app
    app.websocket("/tick") do |_request|
      Wirecore::WebSocketResponse.new(on_connect: ->(ctx) { ctx.subscribe("ticks") })
    end
    serving(app) do |port, _|
      c = RealClient.new(port, "/tick")
      wait_until { app.subscriber_count("ticks") == 1 }
      counts = Thread.new do
        Array.new(3) do |i|
          sleep 0.01
          app.publish("ticks", "t#{i}")
        end
      end.value
      assert_equal [1, 1, 1], counts
      3.times { |i| assert_equal "t#{i}", c.receive_data.data }
      c.close
    end
  end

  def test_callbacks_get_the_connection_to_subscribe_and_exclude
    app = new_app
    app.websocket("/cb/{room}") do |request|
      room = request.params["room"]
      Wirecore::WebSocketResponse.new(
        on_connect: ->(ctx) { ctx.subscribe(room) },
        on_message: ->(msg, ctx) { "sent:#{app.publish(room, msg.as_text, exclude: ctx)}" }
      )
    end
    serving(app) do |port, _|
      a = RealClient.new(port, "/cb/r")
      b = RealClient.new(port, "/cb/r")
      wait_until { app.subscriber_count("r") == 2 }
      a.send_text("hello")
      assert_equal "sent:1", a.receive_data.data
      assert_equal "hello", b.receive_data.data
      [a, b].each(&:close)
    end
  end

  def test_publish_from_a_runtime_timer
    app = new_app
    app.websocket("/tick", stream: true) do |ws|
      ws.subscribe("ticks")
      nil while ws.receive
    end
    serving(app) do |port, runtime|
      c = RealClient.new(port, "/tick")
      wait_until { app.subscriber_count("ticks") == 1 }
      counts = Queue.new
      runtime.add_timer(runtime.now + 0.02) { counts << app.publish("ticks", "from the loop") }
      runtime.wake
      assert_equal "from the loop", c.receive_data.data
      assert_equal 1, counts.pop
      c.close
    end
  end

  class Mp < Wirecore::WebSocket
    serializer :msgpack
    def on_connect(_request) = subscribe("news")
  end

  class Js < Wirecore::WebSocket
    def on_connect(_request)
      subscribe("news")
      raise "topics: #{topics.inspect}" unless topics == ["news"]
    end
  end

  def test_json_and_msgpack_endpoints_each_get_their_encoding
    app = new_app
    app.include(Mp, path: "/mp")
    app.include(Js, path: "/js")
    app.websocket("/stream", stream: true) do |ws|
      ws.subscribe("news")
      nil while ws.receive
    end
    value = { "headline" => "topics", "n" => [1, 2.5, nil, true] }
    serving(app) do |port, _|
      mp = RealClient.new(port, "/mp")
      js = RealClient.new(port, "/js")
      st = RealClient.new(port, "/stream")
      wait_until { app.subscriber_count("news") == 3 }
      assert_equal 3, app.publish("news", value)
      f = mp.receive_data
      assert_equal :binary, f.type
      assert_equal value, Wirecore::Native.decode(f.data.b, :msgpack)
      f = js.receive_data
      assert_equal :text, f.type
      assert_equal value, JSON.parse(f.data)
      assert_equal value, JSON.parse(st.receive_data.data)
      assert_equal 3, app.publish("news", "\x00\x01".b)
      [mp, js, st].each do |c|
        f = c.receive_data
        assert_equal [:binary, "\x00\x01".b], [f.type, f.data.b]
      end
      [mp, js, st].each(&:close)
    end
  end

  def test_a_thousand_subscribers_each_get_every_message
    app = new_app
    app.websocket("/all", stream: true) do |ws|
      ws.subscribe("all")
      nil while ws.receive
    end
    n = 1000
    m = 20
    serving(app) do |port, _|
      clients = Array.new(n) { RealClient.new(port, "/all", timeout: 30) }
      wait_until(30) { app.subscriber_count("all") == n }
      m.times { |i| assert_equal n, app.publish("all", "m#{i}") }
      want = Array.new(m) { |i| "m#{i}" }
      clients.each do |c|
        assert_equal want, Array.new(m) { c.receive_data.data }
        c.close
      end
    end
  end

  def test_a_subscriber_that_never_reads_is_closed_and_the_others_get_everything
    app = new_app
    app.websocket("/feed", stream: true, max_backpressure: 256 * 1024) do |ws|
      ws.subscribe("feed")
      nil while ws.receive
    end
    payload = "p" * 16_384
    total = 400
    serving(app) do |port, _|
      stalled = TCPSocket.new("127.0.0.1", port)
      stalled.setsockopt(Socket::SOL_SOCKET, Socket::SO_RCVBUF, 4096)
      stalled.write("GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
      reader = RealClient.new(port, "/feed", timeout: 30)
      wait_until { app.subscriber_count("feed") == 2 }
      received = 0
      got = Thread.new do
        Array.new(total) { reader.receive_data.data.tap { received += 1 } }
      end
      counts = Array.new(total) do |i|
        wait_until(30) { received >= i - 8 } # the reader keeps up; the stalled one never does
        app.publish("feed", payload)
      end
      assert_equal Array.new(total, payload), got.value
      assert_equal 2, counts.first
      assert_equal 1, counts.last
      stalled.close
      wait_until { app.subscriber_count("feed") == 1 }
      reader.close
    end
  end
end

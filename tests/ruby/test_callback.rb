# frozen_string_literal: true

require_relative "test_helper"

# Callback style: app.websocket(path) { |request| WebSocketResponse.new(...) }.
class TestCallbackStyle < Minitest::Test
  include ServerHelpers

  def echo_app(events = [])
    app = new_app
    app.websocket("/echo") do |_request|
      Wirecore::WebSocketResponse.new(
        on_message: ->(msg) { msg },
        on_connect: -> { events << :connect },
        on_close: ->(code, reason) { events << [:close, code, reason] }
      )
    end
    app
  end

  def test_echoes_text_and_binary_with_the_test_client
    echo_app.test_client do |client|
      client.websocket("/echo") do |ws|
        ws.send_text("hello")
        msg = ws.receive
        assert msg.text?
        assert_equal "hello", msg.as_text
        ws.send_binary("\x00\x01\xFF".b)
        msg = ws.receive
        assert msg.binary?
        assert_equal "\x00\x01\xFF".b, msg.as_binary
      end
    end
  end

  def test_echoes_with_a_real_client
    serving(echo_app) do |port|
      c = RealClient.new(port, "/echo")
      assert c.valid?
      c.send_text("über")
      frame = c.receive_data
      assert_equal :text, frame.type
      assert_equal "über", frame.data.force_encoding("UTF-8")
      c.send_binary("\x01\x02".b)
      frame = c.receive_data
      assert_equal :binary, frame.type
      assert_equal "\x01\x02".b, frame.data.b
      c.close
    end
  end

  def test_large_message_round_trips
    echo_app.test_client do |client|
      client.websocket("/echo") do |ws|
        big = "x" * 300_000
        ws.send_text(big)
        assert_equal big, ws.receive_text
      end
    end
  end

  def test_on_connect_and_on_close_run
    events = Queue.new
    echo_app(events).test_client do |client|
      client.websocket("/echo") do |ws|
        ws.send_text("a")
        ws.receive
      end
    end
    assert_equal :connect, events.pop
    kind, code, = events.pop
    assert_equal :close, kind
    assert_equal 1000, code
  end

  def test_as_json_and_replies_of_every_type
    app = new_app
    app.websocket("/j") do
      Wirecore::WebSocketResponse.new(on_message: lambda { |msg|
        data = msg.as_json
        case data["want"]
        when "hash" then { "got" => data["n"] + 1 }
        when "string" then "plain"
        when "bytes" then "\x01".b
        when "nil" then nil
        end
      })
    end
    app.test_client do |client|
      client.websocket("/j") do |ws|
        ws.send_json(want: "hash", n: 1)
        assert_equal({ "got" => 2 }, ws.receive_json)
        ws.send_json(want: "string")
        assert_equal "plain", ws.receive_text
        ws.send_json(want: "nil")
        ws.send_json(want: "bytes")
        msg = ws.receive
        assert msg.binary?
        assert_equal "\x01".b, msg.data
      end
    end
  end

  def test_request_exposes_params_query_and_headers
    seen = Queue.new
    app = new_app
    app.websocket("/rooms/{room}/{n:int}") do |request|
      seen << request
      Wirecore::WebSocketResponse.new(on_message: ->(m) { m })
    end
    app.test_client do |client|
      client.websocket("/rooms/lobby/42?user=ann&user=bob&x=a+b", headers: { "X-Token" => "t1" }) do |ws|
        ws.send_text("ping")
        ws.receive
      end
    end
    req = seen.pop
    assert_equal "/rooms/lobby/42", req.path
    assert_equal({ "room" => "lobby", "n" => "42" }, req.params)
    assert_equal "ann", req.query["user"]
    assert_equal "a b", req.query["x"]
    assert_equal [%w[user ann], %w[user bob], ["x", "a b"]], req.query_pairs
    assert_equal "t1", req.headers["x-token"]
    assert_equal "t1", req.header("X-TOKEN")
    assert_equal "127.0.0.1", req.remote_addr
    assert_kind_of Integer, req.remote_port
  end

  def test_reject_in_the_block_refuses_the_handshake
    app = new_app
    app.websocket("/private") { |_req| raise Wirecore::Reject.new(401) }
    app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/private") }
      assert_equal 401, err.status
    end
  end

  def test_unknown_path_is_404
    echo_app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/nope") }
      assert_equal 404, err.status
    end
  end

  def test_exception_in_block_refuses_with_500
    app = new_app
    app.websocket("/boom") { |_req| raise "boom" }
    app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/boom") }
      assert_equal 500, err.status
    end
  end

  def test_unhandled_exception_closes_that_connection_with_1011_only
    app = new_app
    app.websocket("/fragile") do
      Wirecore::WebSocketResponse.new(on_message: ->(m) { m.as_text == "boom" ? raise("boom") : m })
    end
    app.test_client do |client|
      other = client.websocket("/fragile")
      client.websocket("/fragile") do |ws|
        ws.send_text("boom")
        assert_equal 1011, ws.wait_closed
      end
      other.send_text("still here")
      assert_equal "still here", other.receive_text
      other.close
    end
  end

  def test_on_error_takes_exceptions_and_its_reply_is_sent
    errors = Queue.new
    app = new_app
    app.websocket("/guarded") do
      Wirecore::WebSocketResponse.new(
        on_message: ->(_m) { raise ArgumentError, "bad input" },
        on_error: ->(e) { errors << e; { "error" => e.message } }
      )
    end
    app.test_client do |client|
      client.websocket("/guarded") do |ws|
        ws.send_text("x")
        assert_equal({ "error" => "bad input" }, ws.receive_json)
        ws.send_text("y") # the connection stayed open
        assert_equal({ "error" => "bad input" }, ws.receive_json)
      end
    end
    assert_kind_of ArgumentError, errors.pop
  end

  def test_on_error_that_raises_closes_with_1011
    app = new_app
    app.websocket("/worse") do
      Wirecore::WebSocketResponse.new(on_message: ->(_m) { raise "a" }, on_error: ->(_e) { raise "b" })
    end
    app.test_client do |client|
      client.websocket("/worse") do |ws|
        ws.send_text("x")
        assert_equal 1011, ws.wait_closed
      end
    end
  end

  def test_returning_something_else_than_a_response_is_a_500
    app = new_app
    app.websocket("/wrong") { |_req| :oops }
    app.test_client do |client|
      assert_equal 500, assert_raises(Wirecore::HandshakeError) { client.websocket("/wrong") }.status
    end
  end

  def test_many_connections_keep_their_own_order
    echo_app.test_client do |client|
      sockets = Array.new(5) { client.websocket("/echo") }
      20.times { |i| sockets.each_with_index { |ws, j| ws.send_text("#{j}:#{i}") } }
      sockets.each_with_index do |ws, j|
        20.times { |i| assert_equal "#{j}:#{i}", ws.receive_text }
        ws.close
      end
    end
  end
end

# Smaller API surface: the protocol edge a real client can reach, and helpers.
class TestCallbackEdges < Minitest::Test
  include ServerHelpers

  def echo_app
    app = new_app
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    app
  end

  def test_invalid_utf8_text_from_a_real_client_closes_with_1007
    serving(echo_app) do |port|
      c = RealClient.new(port, "/echo")
      c.send_text("\xC3\x28".b)
      frame = c.receive_data
      assert_equal :close, frame.type
      assert_equal 1007, frame.code
      c.close
    end
  end

  def test_client_ping_gets_a_pong
    serving(echo_app) do |port|
      c = RealClient.new(port, "/echo")
      c.send_frame("hb", type: :ping)
      frame = c.receive
      assert_equal :pong, frame.type
      assert_equal "hb", frame.data
      c.close
    end
  end

  def test_empty_messages_round_trip
    echo_app.test_client do |client|
      client.websocket("/echo") do |ws|
        ws.send_text("")
        assert_equal "", ws.receive_text
        ws.send_binary("")
        assert_equal "".b, ws.receive_bytes
      end
    end
  end

  def test_request_bracket_reads_a_header
    seen = Queue.new
    app = new_app
    app.websocket("/h") do |req|
      seen << req["x-custom"]
      Wirecore::WebSocketResponse.new
    end
    app.test_client { |c| c.websocket("/h", headers: { "X-Custom" => "v" }) { nil } }
    assert_equal "v", seen.pop
  end

  def test_message_equality_and_constructors
    a = Wirecore::WebSocketMessage.text("x")
    assert_equal a, Wirecore::WebSocketMessage.new("x", :text)
    refute_equal a, Wirecore::WebSocketMessage.binary("x")
    assert_raises(ArgumentError) { Wirecore::WebSocketMessage.new("x", :other) }
  end

  def test_stream_buffered_amount_is_an_integer
    amounts = Queue.new
    app = new_app
    app.websocket("/b", stream: true) do |ws|
      ws.send_text("hi")
      amounts << ws.buffered_amount
      ws.receive
    end
    app.test_client do |client|
      client.websocket("/b") { |ws| assert_equal "hi", ws.receive_text }
    end
    assert_kind_of Integer, amounts.pop
  end

  def test_handshake_timeout_drops_silent_sockets
    app = new_app(handshake_timeout: 0.2)
    app.websocket("/e") { Wirecore::WebSocketResponse.new }
    serving(app) do |port|
      sock = TCPSocket.new("127.0.0.1", port)
      assert sock.wait_readable(5), "server kept a silent socket open"
      data = begin
        sock.read_nonblock(4096, exception: false)
      rescue Errno::ECONNRESET
        nil
      end
      # Either the socket is simply closed, or an HTTP error comes first.
      assert(data.nil? || data.start_with?("HTTP/1.1 4"), "unexpected #{data.inspect}")
      sock.close
    end
  end

  def test_oversized_handshake_is_refused
    app = new_app(max_handshake_size: 1024)
    app.websocket("/e") { Wirecore::WebSocketResponse.new }
    app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/e", headers: { "X-Big" => "a" * 4000 }) }
      assert_equal 431, err.status
    end
  end
end

# frozen_string_literal: true

require_relative "test_helper"

# A stream block stuck in ws.sleep is cancelled (Wirecore::ConnectionClosedError
# raised in its Fiber) when its connection ends: the client floods it, then
# resets the connection (the core stops reading a connection whose messages
# are held, yet notices its peer leave). Also the message_timeout and
# max_buffered_bytes options. Real server on 127.0.0.1, raw sockets.
class TestCancel < Minitest::Test
  include ServerHelpers

  UPGRADE = "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

  # A masked client frame (zero mask keeps the payload as is).
  def frame(payload, opcode: 0x1, fin: true)
    n = payload.bytesize
    head = [(fin ? 0x80 : 0) | opcode].pack("C")
    head += if n < 126 then [0x80 | n].pack("C")
            elsif n < 65_536 then [0x80 | 126, n].pack("Cn")
            else [0x80 | 127, n].pack("CQ>")
            end
    head + "\0\0\0\0" + payload.b
  end

  def raw_client(port, path)
    sock = TCPSocket.new("127.0.0.1", port)
    sock.write(format(UPGRADE, path))
    head = +""
    head << sock.readpartial(4096) until head.include?("\r\n\r\n")
    assert head.start_with?("HTTP/1.1 101"), head
    [sock, head.split("\r\n\r\n", 2)[1].b]
  end

  def hung_app(events)
    app = new_app
    app.websocket("/hang", stream: true) do |ws|
      ws.receive
      events << :started
      begin
        ws.sleep(3600) # a hung handler
      rescue Wirecore::ConnectionClosedError
        events << :cancelled
        raise
      end
    end
    app
  end

  def test_a_sleeping_stream_block_is_cancelled_when_its_client_resets_after_a_flood
    events = Queue.new
    serving(hung_app(events)) do |port, runtime|
      sock, = raw_client(port, "/hang")
      sock.write(frame("first"))
      assert_equal :started, Timeout.timeout(5) { events.pop }
      big = frame("x" * (64 * 1024))
      200.times do
        break unless sock.write_nonblock(big, exception: false).is_a?(Integer)
      end
      sleep 0.2
      assert_predicate events, :empty?
      sock.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
      sock.close # RST
      assert_equal :cancelled, Timeout.timeout(5) { events.pop }, "the reset went unnoticed"
      wait_until { runtime.connection_count.zero? }
      assert_equal 0, runtime.connection_count
    end
  end

  def test_sleep_still_returns_when_the_connection_stays
    app = new_app
    app.websocket("/nap", stream: true) do |ws|
      ws.sleep(0.05)
      ws.send_text("awake")
    end
    serving(app) do |port|
      c = RealClient.new(port, "/nap")
      assert_equal "awake", c.receive_data.data
      c.close
    end
  end

  def test_message_timeout_closes_a_message_kept_open_with_1008
    app = new_app
    app.websocket("/m", message_timeout: 0.2) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    serving(app) do |port|
      sock, rest = raw_client(port, "/m")
      sock.write(frame("ab", fin: false))
      sleep 0.4
      sock.write(frame("c", opcode: 0x0))
      rest << sock.readpartial(4096) while rest.bytesize < 4
      assert_equal 0x88, rest.getbyte(0)
      assert_equal 1008, rest.byteslice(2, 2).unpack1("n")
      sock.close
    end
  end

  def test_max_buffered_bytes_is_an_app_option
    [1 << 20, false].each do |budget| # false: no budget
      app = new_app(max_buffered_bytes: budget)
      app.websocket("/e") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
      serving(app) do |port|
        c = RealClient.new(port, "/e")
        c.send_text("x")
        assert_equal "x", c.receive_data.data
        c.close
      end
    end
  end
end

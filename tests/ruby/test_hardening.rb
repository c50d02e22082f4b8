# frozen_string_literal: true

require_relative "test_helper"

# Hardening options: max_message_fragments (1009 past it) and send_timeout
# (1008 for a client that stops reading), real server on 127.0.0.1.
class TestHardening < Minitest::Test
  include ServerHelpers

  def echo(app, path, **opts)
    app.websocket(path, **opts) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
  end

  # A masked client frame (zero mask) for payloads under 126 bytes.
  def frame(opcode, payload, fin:)
    [(fin ? 0x80 : 0) | opcode, 0x80 | payload.bytesize].pack("CC") + "\0\0\0\0" + payload.b
  end

  def send_fragments(client, parts)
    sock = client.instance_variable_get(:@sock)
    parts.each_with_index do |part, i|
      sock.write(frame(i.zero? ? 0x1 : 0x0, part, fin: i == parts.size - 1))
    end
  end

  def test_more_frames_than_max_message_fragments_close_with_1009
    app = new_app
    echo(app, "/f", max_message_fragments: 4)
    serving(app) do |port|
      c = RealClient.new(port, "/f")
      send_fragments(c, %w[a b c d])
      assert_equal "abcd", c.receive_data.data
      send_fragments(c, %w[a b c d e])
      frame = c.receive_data
      assert_equal :close, frame.type
      assert_equal 1009, frame.code
      c.close
    end
  end

  def test_send_timeout_drops_a_client_that_stops_reading
    app = new_app
    echo(app, "/s", send_timeout: 0.3, pong_timeout: 0.3, max_message_size: 8 << 20)
    serving(app) do |port, runtime|
      sock = TCPSocket.new("127.0.0.1", port)
      sock.setsockopt(Socket::SOL_SOCKET, Socket::SO_RCVBUF, 4096)
      sock.write("GET /s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
      assert_equal "HTTP/1.1 101", sock.readpartial(12)
      payload = "x" * (6 << 20)
      sock.write([0x82, 0xff, payload.bytesize].pack("CCQ>") + "\0\0\0\0" + payload)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      sleep 0.05 until runtime.connection_count.zero? ||
                       Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      assert_equal 0, runtime.connection_count, "the stalled connection is still open"
    ensure
      sock&.close
    end
  end

  def test_unknown_options_are_still_refused
    assert_raises(ArgumentError) { echo(new_app, "/x", send_timout: 1) }
  end
end

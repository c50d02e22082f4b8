# frozen_string_literal: true

require_relative "test_helper"
require "zlib"

# permessage-deflate through the Ruby package: the answer to an offer in each
# mode, a compressed message both ways over a real socket (Ruby's Zlib as the
# client's deflate), the threshold, the `websocket` gem client (which offers
# no extension) unaffected, and bad option values refused.
class TestCompression < Minitest::Test
  include ServerHelpers

  SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

  def echo(app, path, **opts)
    app.websocket(path, **opts) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
  end

  def chat(size)
    items = []
    items << { user: "user#{items.size % 7}", room: "lobby", text: "message number #{items.size} here" } while
      JSON.generate(items).bytesize < size
    JSON.generate(items)
  end

  # A raw client: handshake with an offer, then masked frames.
  class DeflateClient
    attr_reader :answer

    def initialize(port, path, offer)
      @sock = TCPSocket.new("127.0.0.1", port)
      @sock.write("GET #{path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" \
                  "Sec-WebSocket-Extensions: #{offer}\r\n\r\n")
      @buf = +"".b
      read_more until @buf.include?("\r\n\r\n")
      head, @buf = @buf.split("\r\n\r\n", 2)
      raise "no 101: #{head}" unless head.start_with?("HTTP/1.1 101")

      @answer = head[/^Sec-WebSocket-Extensions: (.*)$/i, 1]&.strip
    end

    # One masked frame with the given first byte.
    def send_frame(byte0, payload)
      payload = payload.b
      mask = Random.bytes(4)
      masked = payload.bytes.each_with_index.map { |b, i| b ^ mask.getbyte(i % 4) }.pack("C*")
      len = payload.bytesize
      head = if len < 126 then [byte0, 0x80 | len].pack("CC")
             elsif len < 65_536 then [byte0, 0xFE, len].pack("CCn")
             else [byte0, 0xFF, len].pack("CCQ>")
             end
      @sock.write(head + mask + masked)
    end

    def send_compressed_text(text)
      z = Zlib::Deflate.new(Zlib::DEFAULT_COMPRESSION, -15)
      data = z.deflate(text, Zlib::SYNC_FLUSH)
      z.close
      send_frame(0xC1, data.byteslice(0, data.bytesize - 4))
    end

    # The next frame: [first byte, payload].
    def receive
      read_more while @buf.bytesize < 2
      len = @buf.getbyte(1) & 0x7F
      hl = 2
      if len == 126
        read_more while @buf.bytesize < 4
        len = @buf.byteslice(2, 2).unpack1("n")
        hl = 4
      elsif len == 127
        read_more while @buf.bytesize < 10
        len = @buf.byteslice(2, 8).unpack1("Q>")
        hl = 10
      end
      read_more while @buf.bytesize < hl + len
      frame = [@buf.getbyte(0), @buf.byteslice(hl, len)]
      @buf = @buf.byteslice(hl + len..)
      frame
    end

    def self.inflate(payload)
      z = Zlib::Inflate.new(-15)
      out = z.inflate(payload + "\x00\x00\xff\xff".b)
      z.close
      out
    end

    def close = @sock.close

    private

    def read_more
      raise Timeout::Error, "no data from the server" unless @sock.wait_readable(5)

      chunk = @sock.read_nonblock(65_536, exception: false)
      raise EOFError if chunk.nil?

      @buf << chunk unless chunk == :wait_readable
    end
  end

  def test_shared_mode_is_the_default_and_messages_round_trip_compressed
    app = new_app
    echo(app, "/e")
    serving(app) do |port, _|
      c = DeflateClient.new(port, "/e", "permessage-deflate; client_max_window_bits")
      assert_equal SHARED, c.answer
      [5_000, 200_000].each do |n|
        msg = chat(n)
        c.send_compressed_text(msg)
        b0, body = c.receive
        assert_equal 0xC1, b0
        assert_operator body.bytesize, :<, msg.bytesize / 3
        assert_equal msg, DeflateClient.inflate(body).force_encoding("UTF-8")
      end
      c.close
    end
  end

  def test_threshold_keeps_short_messages_plain
    app = new_app
    echo(app, "/e", compression: "shared", compression_threshold: 100_000)
    serving(app) do |port, _|
      c = DeflateClient.new(port, "/e", "permessage-deflate")
      msg = chat(5_000)
      c.send_compressed_text(msg)
      b0, body = c.receive
      assert_equal 0x81, b0
      assert_equal msg, body.force_encoding("UTF-8")
      c.close
    end
  end

  def test_dedicated_mode_and_off
    app = new_app
    echo(app, "/d", compression: :dedicated, compression_window_bits: 10)
    echo(app, "/o", compression: :off)
    serving(app) do |port, _|
      c = DeflateClient.new(port, "/d", "permessage-deflate; client_max_window_bits")
      assert_equal "permessage-deflate; client_max_window_bits=10", c.answer
      c.close
      c = DeflateClient.new(port, "/o", "permessage-deflate")
      assert_nil c.answer
      c.close
    end
  end

  def test_the_websocket_gem_client_offers_nothing_and_still_works
    app = new_app
    echo(app, "/e")
    serving(app) do |port, _|
      ws = RealClient.new(port, "/e")
      assert ws.valid?
      msg = chat(5_000)
      ws.send_text(msg)
      assert_equal msg, ws.receive_data.data
      ws.close
    end
  end

  def test_bad_compression_options_are_refused
    app = new_app
    assert_raises(ArgumentError) { echo(app, "/x", compression: :fast) }
    app = new_app
    echo(app, "/y", compression: :dedicated, compression_window_bits: 20)
    assert_raises(Wirecore::ConfigError) { serving(app) { flunk("started") } }
  end
end

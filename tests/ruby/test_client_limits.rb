# frozen_string_literal: true

require_relative "test_helper"

# Per-client limits through the gem, real server on 127.0.0.1 and the
# `websocket` gem's client bound to other loopback addresses (127.0.0.x):
# connections and upgrades per address (429 + Retry-After), message and byte
# rates (drop or close 1008, exact counts), X-Forwarded-For only from trusted
# proxies, and the Origin allow-list (403).
class TestClientLimits < Minitest::Test
  include ServerHelpers

  # The clients here never answer the shutdown's close: do not wait long for them.
  def new_app(**opts) = super(shutdown_timeout: 0.2, **opts)

  def echo(app, path, **opts)
    app.websocket(path, **opts) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
  end

  def client(port, path, host, **kw) = RealClient.new(port, path, local_host: "127.0.0.#{host}", **kw)

  def texts(ws, count) = Array.new(count) { ws.receive_data.data }

  def test_per_address_limit_refuses_the_next_with_429_while_others_connect
    app = new_app(max_connections_per_address: 2)
    echo(app, "/e")
    serving(app) do |port|
      a = client(port, "/e", 2)
      b = client(port, "/e", 2)
      assert a.valid? && b.valid?
      refused = client(port, "/e", 2)
      refute refused.valid?
      assert_match(/ 429 /, refused.status_line)
      assert_includes refused.handshake.instance_variable_get(:@data).to_s, "Retry-After: 1\r\n"
      assert client(port, "/e", 3).valid?
      a.close
      wait_until { client(port, "/e", 2).valid? }
      b.close
    end
  end

  def test_handshake_rate_allows_the_burst_then_429
    app = new_app(handshake_rate: 1, handshake_burst: 2)
    echo(app, "/e")
    serving(app) do |port|
      2.times { assert client(port, "/e", 4).tap(&:close).valid? }
      assert_match(/ 429 /, client(port, "/e", 4).status_line)
      assert client(port, "/e", 5).valid?
    end
  end

  def test_message_rate_drops_exactly_the_excess
    seen = Queue.new
    app = new_app
    app.websocket("/r", message_rate: 1, message_burst: 3) do
      Wirecore::WebSocketResponse.new(on_message: ->(m) { seen << m.data; m })
    end
    serving(app) do |port|
      ws = client(port, "/r", 2)
      %w[a b c d e f].each { |m| ws.send_text(m) }
      sleep 1.1 # one token back
      ws.send_text("z")
      assert_equal %w[a b c z], texts(ws, 4)
      assert_equal %w[a b c z], Array.new(seen.size) { seen.pop }
    end
  end

  def test_rate_limit_action_close_sends_1008
    app = new_app
    echo(app, "/r", message_rate: 1, message_burst: 2, rate_limit_action: :close)
    serving(app) do |port|
      ws = client(port, "/r", 2)
      %w[a b c d].each { |m| ws.send_text(m) }
      assert_equal %w[a b], texts(ws, 2)
      close = ws.receive_data
      assert_equal :close, close.type
      assert_equal 1008, close.code
      assert_equal "rate limit", close.data.to_s
    end
  end

  def test_byte_rate_counts_payload_bytes
    app = new_app
    echo(app, "/b", byte_rate: 10)
    serving(app) do |port|
      ws = client(port, "/b", 2)
      ws.send_text("123456") # 6
      ws.send_text("1234")   # 4: the bucket is empty
      ws.send_text("123")    # dropped
      ws.send_text("x" * 20) # over the burst: never passes
      sleep 0.4 # 4 bytes back
      ws.send_text("2")
      assert_equal %w[123456 1234 2], texts(ws, 3)
    end
  end

  def test_forwarded_for_is_honoured_only_from_trusted_proxies
    seen = Queue.new
    app = new_app(trusted_proxies: ["127.0.0.6", "10.0.0.0/8"], max_connections_per_address: 1)
    app.websocket("/w") do |req|
      seen << req.remote_addr
      Wirecore::WebSocketResponse.new(on_message: ->(m) { m })
    end
    serving(app) do |port|
      xff = { "X-Forwarded-For" => "198.51.100.1, 203.0.113.9, 10.1.2.3" }
      assert client(port, "/w", 6, headers: xff).valid?
      assert_match(/ 429 /, client(port, "/w", 6, headers: xff).status_line)
      assert client(port, "/w", 7, headers: xff).valid?
      fwd = { "Forwarded" => 'for="[2001:db8::1]:4711";proto=https' }
      assert client(port, "/w", 6, headers: fwd).valid?
    end
    assert_equal %w[203.0.113.9 127.0.0.7 2001:db8::1], Array.new(seen.size) { seen.pop }
  end

  def test_allowed_origins_answers_403
    app = new_app
    echo(app, "/o", allowed_origins: ["https://app.example"])
    serving(app) do |port|
      assert_match(/ 403 /, client(port, "/o", 2, origin: "https://evil.example").status_line)
      assert client(port, "/o", 2, origin: "https://app.example").valid?
    end
  end

  def test_bad_limits_are_config_errors
    assert_raises(Wirecore::ConfigError) { new_app(max_connections_per_address: -1) }
    assert_raises(Wirecore::ConfigError) { new_app(handshake_rate: 1.5) }
    assert_raises(Wirecore::ConfigError) { new_app(trusted_proxies: "10.0.0.1") }
    assert_raises(Wirecore::ConfigError) { new_app(trusted_proxies: ["nope"]).start }
    [{ message_rate: -1 }, { rate_limit_action: :ignore }, { byte_burst: "10" }].each do |opts|
      app = new_app
      echo(app, "/x", **opts)
      assert_raises(Wirecore::ConfigError) { app.start }
    end
  end
end

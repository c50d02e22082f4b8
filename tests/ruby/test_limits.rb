# frozen_string_literal: true

require_relative "test_helper"

# Keyword limits: max_message_size, allowed_origins, subprotocols,
# idle_timeout, max_backpressure, max_connections, on_invalid.
class TestLimits < Minitest::Test
  include ServerHelpers

  def echo(app, path, **opts)
    app.websocket(path, **opts) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
  end

  def test_message_over_max_message_size_closes_with_1009
    app = new_app
    echo(app, "/small", max_message_size: 1024)
    app.test_client do |client|
      client.websocket("/small") do |ws|
        ws.send_text("a" * 1000)
        assert_equal 1000, ws.receive_text.bytesize
        ws.send_text("a" * 5000)
        assert_equal 1009, ws.wait_closed
      end
    end
  end

  def test_app_level_options_are_endpoint_defaults
    app = new_app(max_message_size: 100)
    echo(app, "/a")
    echo(app, "/b", max_message_size: 1000)
    app.test_client do |client|
      client.websocket("/a") do |ws|
        ws.send_text("x" * 500)
        assert_equal 1009, ws.wait_closed
      end
      client.websocket("/b") do |ws|
        ws.send_text("x" * 500)
        assert_equal 500, ws.receive_text.size
      end
    end
    assert_raises(ArgumentError) { new_app(max_msg: 1) }
  end

  def test_allowed_origins
    app = new_app
    echo(app, "/o", allowed_origins: ["https://good.example"])
    app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/o", origin: "https://evil.example") }
      assert_equal 403, err.status
      client.websocket("/o", origin: "https://good.example") do |ws|
        ws.send_text("ok")
        assert_equal "ok", ws.receive_text
      end
    end
  end

  def test_subprotocol_is_negotiated_in_server_order
    seen = Queue.new
    app = new_app
    app.websocket("/p", subprotocols: %w[v2 v1]) do |req|
      seen << req.subprotocol
      Wirecore::WebSocketResponse.new(on_message: ->(m) { m })
    end
    app.test_client do |client|
      client.websocket("/p", subprotocols: %w[v1 v2]) { |ws| assert_equal "v2", ws.subprotocol }
    end
    assert_equal "v2", seen.pop
  end

  def test_subprotocol_with_a_real_client
    app = new_app
    echo(app, "/p", subprotocols: ["chat"])
    serving(app) do |port|
      c = RealClient.new(port, "/p", protocols: ["chat"])
      assert c.valid?
      assert_equal "chat", c.handshake.headers["sec-websocket-protocol"]
      c.close
    end
  end

  def test_idle_timeout_makes_the_server_ping
    app = new_app
    echo(app, "/idle", idle_timeout: 0.2)
    serving(app) do |port|
      c = RealClient.new(port, "/idle")
      assert_equal :ping, c.receive(timeout: 3).type
      c.close
    end
  end

  # Sends made by a block the loop thread runs cannot wait for the peer
  # (stream blocks' sends do: test_sessions.rb).
  def test_slow_consumer_over_max_backpressure_is_cut_off
    errors = Queue.new
    app = new_app
    app.websocket("/flood", serializer: :json, max_backpressure: 64 * 1024) do |_message, ctx|
      chunk = "x" * (256 * 1024)
      begin
        400.times { ctx.send_text(chunk) }
        errors << :none
      rescue Wirecore::Error => e
        errors << e
      end
      nil
    end
    serving(app) do |port|
      c = RealClient.new(port, "/flood") # never reads
      c.send_text("{}")
      err = Timeout.timeout(10) { errors.pop }
      assert_kind_of Wirecore::Error, err
      assert_includes %i[EBACKPRESSURE ECLOSED], err.code
      c.close
    end
  end

  def test_max_connections_answers_503
    app = new_app(max_connections: 1)
    echo(app, "/one")
    app.test_client do |client|
      first = client.websocket("/one")
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/one") }
      assert_equal 503, err.status
      first.close
    end
  end

  def test_on_invalid_close_policy_closes_with_1008
    app = new_app
    app.websocket("/strict", message_schema: ECHO_SCHEMA, on_invalid: :close) { |m, _| m }
    app.test_client do |client|
      client.websocket("/strict") do |ws|
        ws.send_json(nope: 1)
        assert_equal 1008, ws.wait_closed
      end
    end
  end
end

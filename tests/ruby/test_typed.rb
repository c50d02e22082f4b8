# frozen_string_literal: true

require_relative "test_helper"

# Typed style: block(message, ctx) with a JSON Schema validated by the core.
class TestTypedStyle < Minitest::Test
  include ServerHelpers

  CHAT = {
    "type" => "object",
    "properties" => { "text" => { "type" => "string", "maxLength" => 20 } },
    "required" => ["text"]
  }.freeze

  def chat_app(**opts)
    app = new_app
    app.websocket("/chat/{room}", message_schema: CHAT, **opts) do |message, ctx|
      { "echo" => message["text"], "room" => ctx.params["room"], "user" => ctx.query["user"] }
    end
    app
  end

  def test_valid_message_reaches_the_handler_and_the_reply_is_json
    chat_app.test_client do |client|
      client.websocket("/chat/lobby?user=ann") do |ws|
        ws.send_json(text: "hi")
        assert_equal({ "echo" => "hi", "room" => "lobby", "user" => "ann" }, ws.receive_json)
      end
    end
  end

  def test_invalid_message_gets_the_core_error_reply_and_the_connection_stays_open
    chat_app.test_client do |client|
      client.websocket("/chat/lobby") do |ws|
        ws.send_json(text: 42)
        reply = ws.receive_json
        assert_equal "error", reply["type"]
        refute_nil reply["error"]
        ws.send_json(text: "still open")
        assert_equal "still open", ws.receive_json["echo"]
      end
    end
  end

  def test_undecodable_json_gets_the_core_error_reply
    chat_app.test_client do |client|
      client.websocket("/chat/lobby") do |ws|
        ws.send_text("{not json")
        assert_equal "error", ws.receive_json["type"]
        ws.send_json(text: "ok")
        assert_equal "ok", ws.receive_json["echo"]
      end
    end
  end

  def test_invalid_message_with_a_real_client
    serving(chat_app) do |port|
      c = RealClient.new(port, "/chat/r1")
      c.send_text('{"text": 1}')
      assert_equal "error", JSON.parse(c.receive_data.data)["type"]
      c.send_text('{"text": "x"}')
      assert_equal "x", JSON.parse(c.receive_data.data)["echo"]
      c.close
    end
  end

  def test_on_error_handles_validation_errors_with_path_and_keyword
    errors = Queue.new
    on_error = lambda do |err, ctx|
      errors << err
      { "bad" => err.path, "keyword" => err.keyword, "room" => ctx.params["room"] }
    end
    chat_app(on_error: on_error).test_client do |client|
      client.websocket("/chat/r9") do |ws|
        ws.send_json(text: "x" * 50)
        assert_equal({ "bad" => "/text", "keyword" => "maxLength", "room" => "r9" }, ws.receive_json)
      end
    end
    err = errors.pop
    assert_kind_of Wirecore::ValidationError, err
    assert_equal :EVALIDATION, err.code
  end

  def test_on_error_gets_deserialization_errors
    errors = Queue.new
    chat_app(on_error: ->(err, _ctx) { errors << err; { "oops" => true } }).test_client do |client|
      client.websocket("/chat/r") do |ws|
        ws.send_text("[")
        assert_equal({ "oops" => true }, ws.receive_json)
      end
    end
    assert_kind_of Wirecore::DeserializationError, errors.pop
  end

  def test_on_error_that_raises_leaves_the_core_default_reply
    chat_app(on_error: ->(err, _ctx) { raise err }).test_client do |client|
      client.websocket("/chat/r") do |ws|
        ws.send_json(text: 1)
        assert_equal "error", ws.receive_json["type"]
        ws.send_json(text: "open")
        assert_equal "open", ws.receive_json["echo"]
      end
    end
  end

  def test_ctx_send_and_close
    app = new_app
    app.websocket("/ctx", message_schema: { "type" => "object" }) do |msg, ctx|
      ctx.send({ "first" => true })
      ctx.close(4000, "done") if msg["close"]
      nil
    end
    app.test_client do |client|
      client.websocket("/ctx") do |ws|
        ws.send_json(close: false)
        assert_equal({ "first" => true }, ws.receive_json)
        ws.send_json(close: true)
        assert_equal({ "first" => true }, ws.receive_json)
        assert_equal 4000, ws.wait_closed
        assert_equal "done", ws.close_reason
      end
    end
  end

  def test_two_argument_block_without_schema_is_typed_json
    app = new_app
    app.websocket("/any") { |msg, _ctx| { "got" => msg } }
    app.test_client do |client|
      client.websocket("/any") do |ws|
        ws.send_json([1, 2])
        assert_equal({ "got" => [1, 2] }, ws.receive_json)
      end
    end
  end

  def test_response_schema_violation_closes_with_1011
    app = new_app
    app.websocket("/strict", message_schema: { "type" => "object" },
                             response_schema: { "type" => "object", "required" => ["ok"] }) do |msg, _ctx|
      msg["good"] ? { "ok" => true } : { "nope" => 1 }
    end
    app.test_client do |client|
      client.websocket("/strict") do |ws|
        ws.send_json(good: true)
        assert_equal({ "ok" => true }, ws.receive_json)
        ws.send_json(good: false)
        assert_equal 1011, ws.wait_closed
      end
    end
  end

  def test_msgpack_serializer
    app = new_app
    app.websocket("/mp", message_schema: CHAT, serializer: :msgpack) { |msg, _| { "echo" => msg["text"] } }
    app.test_client do |client|
      client.websocket("/mp") do |ws|
        ws.send_msgpack(text: "packed")
        msg = ws.receive
        assert msg.binary?
        assert_equal({ "echo" => "packed" }, msg.as_msgpack)
      end
    end
  end

  def test_handler_exception_closes_with_1011_and_others_carry_on
    app = new_app
    app.websocket("/t", message_schema: CHAT) { |msg, _| msg["text"] == "boom" ? raise("boom") : msg }
    app.test_client do |client|
      other = client.websocket("/t")
      client.websocket("/t") do |ws|
        ws.send_json(text: "boom")
        assert_equal 1011, ws.wait_closed
      end
      other.send_json(text: "fine")
      assert_equal({ "text" => "fine" }, other.receive_json)
      other.close
    end
  end

  def test_bad_schema_raises_schema_error_at_start
    app = new_app
    app.websocket("/bad", message_schema: { "type" => 12 }) { |m, _| m }
    assert_raises(Wirecore::SchemaError) { app.test_client { nil } }
  end

  def test_bad_route_raises_route_error
    app = new_app
    app.websocket("/x/{unclosed", message_schema: CHAT) { |m, _| m }
    assert_raises(Wirecore::RouteError) { app.test_client { nil } }
  end

  def test_unknown_option_is_an_argument_error
    assert_raises(ArgumentError) { new_app.websocket("/x", max_size: 1) { |m, _| m } }
  end
end

# The typed context's raw sends.
class TestTypedContext < Minitest::Test
  include ServerHelpers

  def test_ctx_send_text_and_send_binary_and_closed
    states = Queue.new
    app = new_app
    app.websocket("/raw", message_schema: { "type" => "object" }) do |_msg, ctx|
      ctx.send_text("raw text")
      ctx.send_binary("\x01".b)
      states << ctx.closed?
      nil
    end
    app.test_client do |client|
      client.websocket("/raw") do |ws|
        ws.send_json({})
        assert_equal "raw text", ws.receive_text
        assert_equal "\x01".b, ws.receive_bytes
      end
    end
    assert_equal false, states.pop
  end
end

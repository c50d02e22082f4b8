# frozen_string_literal: true

require_relative "test_helper"

MESSAGE_SCHEMA = {
  "type" => "object",
  "properties" => { "type" => { "const" => "message" }, "text" => { "type" => "string" } },
  "required" => %w[type text]
}.freeze
REACTION_SCHEMA = {
  "type" => "object",
  "properties" => { "type" => { "const" => "reaction" }, "emoji" => { "type" => "string" } },
  "required" => %w[type emoji]
}.freeze

class Room < Wirecore::WebSocket
  EVENTS = Queue.new

  path "/rooms/{room}"
  receive :message, MESSAGE_SCHEMA
  receive :reaction, REACTION_SCHEMA
  rescue_from Wirecore::UnknownMessageError, with: :on_unknown
  rescue_from KeyError do |err|
    { "type" => "key_error", "message" => err.message }
  end

  def on_connect(request)
    raise Wirecore::Reject.new(403) if request.query["banned"]

    transmit({ "type" => "welcome", "room" => params["room"] })
  end

  def receive_message(data)
    raise KeyError, "missing" if data["text"] == "key"
    raise "boom" if data["text"] == "boom"

    { "type" => "message", "text" => data["text"], "room" => params["room"] }
  end

  def receive_reaction(data) = { "type" => "reaction", "emoji" => data["emoji"] }

  def on_unknown(error) = { "type" => "unknown", "code" => error.code.to_s }

  def on_disconnect(code, _reason)
    EVENTS << [:disconnect, code]
  end
end

class PackedRoom < Wirecore::WebSocket
  path "/packed"
  serializer :msgpack
  receive :message, MESSAGE_SCHEMA

  def receive_message(data) = { "echo" => data["text"], "bin" => "\x00".b }
end

class PlainRoom < Wirecore::WebSocket
  path "/plain"

  def on_message(data) = { "got" => data }
end

# Class style: Wirecore::WebSocket subclasses with dispatch in the core.
class TestClassStyle < Minitest::Test
  include ServerHelpers

  def app
    a = new_app
    a.include(Room)
    a.include(PackedRoom)
    a.include(PlainRoom)
    a
  end

  def test_dispatches_to_the_receive_method_of_the_matching_schema
    app.test_client do |client|
      client.websocket("/rooms/blue") do |ws|
        assert_equal({ "type" => "welcome", "room" => "blue" }, ws.receive_json)
        ws.send_json(type: "message", text: "hi")
        assert_equal({ "type" => "message", "text" => "hi", "room" => "blue" }, ws.receive_json)
        ws.send_json(type: "reaction", emoji: ":)")
        assert_equal({ "type" => "reaction", "emoji" => ":)" }, ws.receive_json)
      end
    end
  end

  def test_rescue_from_handles_unknown_messages
    app.test_client do |client|
      client.websocket("/rooms/a") do |ws|
        ws.receive_json
        ws.send_json(type: "dance")
        assert_equal "unknown", ws.receive_json["type"]
        ws.send_json(type: "message", text: "after")
        assert_equal "after", ws.receive_json["text"]
      end
    end
  end

  def test_validation_failure_without_rescue_gets_the_core_reply
    app.test_client do |client|
      client.websocket("/rooms/a") do |ws|
        ws.receive_json
        ws.send_json(type: "message", text: 5)
        reply = ws.receive_json
        # With a discriminator the core knows the kind: a ValidationError, which
        # Room does not rescue, so the core's default reply goes out.
        assert_includes %w[error unknown], reply["type"]
      end
    end
  end

  def test_rescue_from_with_a_block_handles_handler_exceptions
    app.test_client do |client|
      client.websocket("/rooms/a") do |ws|
        ws.receive_json
        ws.send_json(type: "message", text: "key")
        assert_equal "key_error", ws.receive_json["type"]
      end
    end
  end

  def test_unrescued_exception_closes_with_1011
    app.test_client do |client|
      client.websocket("/rooms/a") do |ws|
        ws.receive_json
        ws.send_json(type: "message", text: "boom")
        assert_equal 1011, ws.wait_closed
      end
    end
  end

  def test_on_connect_can_reject_before_the_upgrade
    app.test_client do |client|
      err = assert_raises(Wirecore::HandshakeError) { client.websocket("/rooms/a?banned=1") }
      assert_equal 403, err.status
    end
  end

  def test_on_disconnect_gets_the_close_code
    Room::EVENTS.clear
    app.test_client do |client|
      ws = client.websocket("/rooms/a")
      ws.receive_json
      ws.close(4001, "bye")
    end
    assert_equal [:disconnect, 4001], Room::EVENTS.pop
  end

  def test_msgpack_serializer_with_a_real_client
    serving(app) do |port|
      c = RealClient.new(port, "/packed")
      c.send_binary(Wirecore::Native.encode({ type: "message", text: "mp" }, :msgpack))
      frame = c.receive_data
      assert_equal :binary, frame.type
      assert_equal({ "echo" => "mp", "bin" => "\x00".b }, Wirecore::Native.decode(frame.data, :msgpack))
      c.close
    end
  end

  def test_text_frame_on_msgpack_endpoint_is_an_error_reply
    app.test_client do |client|
      client.websocket("/packed") do |ws|
        ws.send_text("{}")
        msg = ws.receive
        assert_equal "error", msg.as_msgpack["type"]
      end
    end
  end

  def test_class_without_receivers_gets_on_message
    app.test_client do |client|
      client.websocket("/plain") do |ws|
        ws.send_json([1])
        assert_equal({ "got" => [1] }, ws.receive_json)
      end
    end
  end

  def test_include_rejects_other_classes
    assert_raises(ArgumentError) { new_app.include(String) }
  end

  def test_include_with_an_explicit_path
    a = new_app
    a.include(PlainRoom, path: "/elsewhere")
    a.test_client do |client|
      client.websocket("/elsewhere") do |ws|
        ws.send_json(1)
        assert_equal({ "got" => 1 }, ws.receive_json)
      end
    end
  end
end

class StrictRoom < Wirecore::WebSocket
  path "/strict/{id:int}"
  receive :message, MESSAGE_SCHEMA
  response_schema({ "type" => "object", "required" => ["ok"] })
  options max_message_size: 256, on_invalid: :ignore

  def receive_message(data)
    return close(4003, "asked") if data["text"] == "close"
    return { "bad" => true } if data["text"] == "bad"

    { "ok" => true, "id" => params["id"], "agent" => headers["user-agent"], "q" => query["q"] }
  end
end

class ChildRoom < StrictRoom
  path "/child"
end

# Class endpoints: response_schema, options, close, inheritance.
class TestClassOptions < Minitest::Test
  include ServerHelpers

  def app
    a = new_app
    a.include(StrictRoom)
    a.include(ChildRoom)
    a
  end

  def test_helpers_read_the_request
    app.test_client do |client|
      client.websocket("/strict/7?q=x", headers: { "User-Agent" => "minitest" }) do |ws|
        ws.send_json(type: "message", text: "hi")
        assert_equal({ "ok" => true, "id" => "7", "agent" => "minitest", "q" => "x" }, ws.receive_json)
      end
    end
  end

  def test_close_from_a_handler
    app.test_client do |client|
      client.websocket("/strict/1") do |ws|
        ws.send_json(type: "message", text: "close")
        assert_equal 4003, ws.wait_closed
        assert_equal "asked", ws.close_reason
      end
    end
  end

  def test_reply_failing_the_response_schema_closes_with_1011
    app.test_client do |client|
      client.websocket("/strict/1") do |ws|
        ws.send_json(type: "message", text: "bad")
        assert_equal 1011, ws.wait_closed
      end
    end
  end

  def test_ignore_policy_sends_nothing_for_invalid_messages
    app.test_client do |client|
      client.websocket("/strict/1") do |ws|
        ws.send_json(type: "nope")
        ws.send_json(type: "message", text: "after")
        assert_equal true, ws.receive_json["ok"]
      end
    end
  end

  def test_class_options_apply
    app.test_client do |client|
      client.websocket("/strict/1") do |ws|
        ws.send_json(type: "message", text: "x" * 400)
        assert_equal 1009, ws.wait_closed
      end
    end
  end

  def test_subclass_inherits_receivers_and_options
    assert_equal [:message], ChildRoom.receivers.map(&:first)
    assert_equal 256, ChildRoom.inherited_options[:max_message_size]
    app.test_client do |client|
      client.websocket("/child") do |ws|
        ws.send_json(type: "message", text: "hi")
        assert_equal true, ws.receive_json["ok"]
      end
    end
  end

  def test_bad_serializer_is_an_argument_error
    assert_raises(ArgumentError) { Class.new(Wirecore::WebSocket) { serializer :xml } }
  end
end

# frozen_string_literal: true

# Class style: one method per message type; the core's dispatcher picks it
# from the "type" discriminator. MessagePack on the wire.
#   ruby examples/room.rb            # ws://127.0.0.1:8000/rooms/{room}
require "wirecore"

MESSAGE_SCHEMA = {
  type: "object",
  properties: { type: { const: "message" }, text: { type: "string" } },
  required: %w[type text]
}.freeze
REACTION_SCHEMA = {
  type: "object",
  properties: { type: { const: "reaction" }, emoji: { type: "string", maxLength: 8 } },
  required: %w[type emoji]
}.freeze

class Room < Wirecore::WebSocket
  path "/rooms/{room}"
  serializer :msgpack
  receive :message, MESSAGE_SCHEMA
  receive :reaction, REACTION_SCHEMA
  rescue_from Wirecore::UnknownMessageError, with: :on_unknown_error

  def on_connect(request)
    raise Wirecore::Reject.new(403) if request.query["banned"]
  end

  def receive_message(data) = { type: "message", room: params["room"], text: data["text"] }
  def receive_reaction(data) = { type: "reaction", emoji: data["emoji"] }
  def on_unknown_error(error) = { type: "error", error: error.message }
  def on_disconnect(code, _reason) = nil
end

app = Wirecore::App.new
app.include(Room)

if ARGV.include?("--smoke-test")
  app.test_client do |client|
    client.websocket("/rooms/blue") do |ws|
      ws.send_msgpack(type: "reaction", emoji: "+1")
      reply = ws.receive_msgpack
      raise "room failed: #{reply}" unless reply == { "type" => "reaction", "emoji" => "+1" }

      ws.send_msgpack(type: "dance")
      raise "no unknown reply" unless ws.receive_msgpack["type"] == "error"
    end
  end
  puts "room.rb ok"
else
  app.run(host: "127.0.0.1", port: Integer(ENV.fetch("PORT", 8000)))
end

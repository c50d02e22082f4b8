# frozen_string_literal: true

# Typed style: messages are validated by the core against CHAT_SCHEMA before
# the block runs; the block's return value is sent back as JSON.
#   ruby examples/chat.rb            # ws://127.0.0.1:8000/chat/{room}?user=NAME
require "wirecore"

CHAT_SCHEMA = {
  type: "object",
  properties: { text: { type: "string", minLength: 1, maxLength: 500 } },
  required: ["text"],
  additionalProperties: false
}.freeze

app = Wirecore::App.new
app.websocket("/chat/{room}", message_schema: CHAT_SCHEMA, max_message_size: 64 * 1024) do |message, ctx|
  { echo: message["text"], room: ctx.params["room"], user: ctx.query["user"] }
end

if ARGV.include?("--smoke-test")
  app.test_client do |client|
    client.websocket("/chat/lobby?user=ann") do |ws|
      ws.send_json(text: "hi")
      reply = ws.receive_json
      raise "chat failed: #{reply}" unless reply == { "echo" => "hi", "room" => "lobby", "user" => "ann" }

      ws.send_json(text: 42) # invalid: the core answers with an error message
      raise "no error reply" unless ws.receive_json["type"] == "error"
    end
  end
  puts "chat.rb ok"
else
  app.run(host: "127.0.0.1", port: Integer(ENV.fetch("PORT", 8000)))
end

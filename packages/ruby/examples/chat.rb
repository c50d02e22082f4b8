# frozen_string_literal: true

# Chat rooms: each room is a topic. Messages are validated by the core
# against CHAT_SCHEMA, then App#publish sends them once to the whole room
# (the frame is built once and shared by every member's output queue).
#   ruby examples/chat.rb            # ws://127.0.0.1:8000/chat/{room}?user=NAME
require "wirecore"

CHAT_SCHEMA = {
  type: "object",
  properties: { text: { type: "string", minLength: 1, maxLength: 500 } },
  required: ["text"],
  additionalProperties: false
}.freeze

APP = Wirecore::App.new

class ChatRoom < Wirecore::WebSocket
  path "/chat/{room}"
  receive :chat, CHAT_SCHEMA
  options max_message_size: 64 * 1024

  def on_connect(_request) = subscribe(room)

  def receive_chat(message)
    APP.publish(room, { user: user, text: message["text"] })
    nil
  end

  def on_disconnect(_code, _reason) = APP.publish(room, { left: user })

  private

  def room = params["room"]
  def user = query["user"] || "guest"
end

APP.include(ChatRoom)

if ARGV.include?("--smoke-test")
  APP.test_client do |client|
    client.websocket("/chat/lobby?user=ann") do |ann|
      client.websocket("/chat/lobby?user=bob") do |bob|
        ann.send_json(text: "hi")
        want = { "user" => "ann", "text" => "hi" }
        [ann, bob].each { |ws| raise "chat failed" unless ws.receive_json == want }
        raise "two members expected" unless APP.subscriber_count("lobby") == 2

        ann.send_json(text: 42) # invalid: the core answers with an error message
        raise "no error reply" unless ann.receive_json["type"] == "error"
      end
      raise "no leave event" unless ann.receive_json == { "left" => "bob" }
    end
  end
  puts "chat.rb ok"
else
  APP.run(host: "127.0.0.1", port: Integer(ENV.fetch("PORT", 8000)))
end

# Echo server on Wirecore's Ruby gem.
# Usage: ruby ruby_wirecore.rb [--host H] [--port P] [--typed | --chat]
# Raw (/): every message goes back as it came. Typed (/chat/{room}): a JSON
# Schema checked in C; the returned Hash is encoded in C. Chat (--chat,
# /chat/{room}): the fan-out server; each connection subscribes to its room
# and a text message is published to the room (the sender included) with
# App#publish, as build/wire_chat does.
require 'optparse'
begin
  require 'wirecore'
rescue LoadError
  $LOAD_PATH.unshift File.expand_path('../../../packages/ruby/lib', __dir__)
  require 'wirecore'
end

host = '127.0.0.1'
port = 9015
typed = false
chat = false
OptionParser.new do |o|
  o.on('--host H') { |v| host = v }
  o.on('--port P', Integer) { |v| port = v }
  o.on('--typed') { typed = true }
  o.on('--chat') { chat = true }
end.parse!

CHAT_SCHEMA = {
  'type' => 'object',
  'properties' => { 'type' => { 'const' => 'chat' }, 'user' => { 'type' => 'string' },
                    'text' => { 'type' => 'string' } },
  'required' => %w[type user text]
}.freeze

app = Wirecore::App.new
if chat
  app.websocket('/chat/{room}') do |request|
    topic = request.params['room']
    Wirecore::WebSocketResponse.new(
      on_connect: ->(ctx) { ctx.subscribe(topic) },
      on_message: lambda do |msg|
        app.publish(topic, msg.as_text) if msg.text?
        nil
      end
    )
  end
elsif typed
  app.websocket('/chat/{room}', message_schema: CHAT_SCHEMA) do |message, _ctx|
    { 'type' => 'chat', 'user' => message['user'], 'text' => message['text'] }
  end
else
  app.websocket('/') do |_request|
    Wirecore::WebSocketResponse.new(on_message: ->(msg) { msg })
  end
end
$stdout.puts "listening on #{host}:#{port}"
$stdout.flush
app.run(host: host, port: port)

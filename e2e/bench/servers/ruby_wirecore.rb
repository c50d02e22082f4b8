# Echo server on Wirecore's Ruby gem.
# Usage: ruby ruby_wirecore.rb [--host H] [--port P] [--typed]
# Raw (/): every message goes back as it came. Typed (/chat/{room}): a JSON
# Schema checked in C; the returned Hash is encoded in C.
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
OptionParser.new do |o|
  o.on('--host H') { |v| host = v }
  o.on('--port P', Integer) { |v| port = v }
  o.on('--typed') { typed = true }
end.parse!

CHAT_SCHEMA = {
  'type' => 'object',
  'properties' => { 'type' => { 'const' => 'chat' }, 'user' => { 'type' => 'string' },
                    'text' => { 'type' => 'string' } },
  'required' => %w[type user text]
}.freeze

app = Wirecore::App.new
if typed
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

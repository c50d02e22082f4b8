# Echo server on faye-websocket, served by thin: the second Ruby peer.
# Usage: thin --rackup ruby_faye.ru --address H --port P --max-conns 20000 start
require 'faye/websocket'

Faye::WebSocket.load_adapter('thin')
$stdout.sync = true

run lambda { |env|
  if Faye::WebSocket.websocket?(env)
    ws = Faye::WebSocket.new(env, nil, max_length: 64 * 1024 * 1024)
    ws.on(:message) { |event| ws.send(event.data) }
    ws.rack_response
  else
    [404, { 'content-type' => 'text/plain' }, ['WebSocket only']]
  end
}

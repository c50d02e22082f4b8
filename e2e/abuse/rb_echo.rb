# frozen_string_literal: true

# The abuse suite's Ruby server: the package's callback-style echo on /echo
# with the suite's short deadlines (send_timeout 1.5 s, pong_timeout 1 s, also
# the close deadline), and /hang, a stream block that sleeps for ever after
# its first message unless the connection ends.
#
#   ruby -I packages/ruby/lib rb_echo.rb --port 8000 [--max-buffered BYTES]
$stdout.sync = true
require "wirecore"

arg = ->(name) { (i = ARGV.index(name)) && Integer(ARGV[i + 1]) }
app = Wirecore::App.new(logger: nil, max_buffered_bytes: arg.call("--max-buffered"))
limits = { send_timeout: 1.5, pong_timeout: 1.0 }
app.websocket("/echo", **limits) { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
app.websocket("/hang", stream: true, **limits) do |ws|
  ws.receive
  ws.sleep(3600)
end
app.run(host: "127.0.0.1", port: arg.call("--port") || 8000) do |rt|
  puts "listening on ws://127.0.0.1:#{rt.port}"
end

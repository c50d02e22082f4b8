# frozen_string_literal: true

# Inside the bare root: an echo round trip through the installed platform gem,
# with the `websocket` gem's client (handshake + frames) over a real TCPSocket.
require "socket"
require "websocket"
require "wirecore"

app = Wirecore::App.new
app.websocket("/echo") do |_request|
  Wirecore::WebSocketResponse.new(on_message: ->(msg) { msg })
end
runtime, thread = app.start(host: "127.0.0.1", port: 0)
sock = TCPSocket.new("127.0.0.1", runtime.port)
hs = WebSocket::Handshake::Client.new(url: "ws://127.0.0.1:#{runtime.port}/echo")
sock.write(hs.to_s)
hs << sock.readpartial(4096) until hs.finished?
raise "handshake refused" unless hs.valid?

incoming = WebSocket::Frame::Incoming::Client.new(version: hs.version)
incoming << hs.leftovers.to_s
sock.write(WebSocket::Frame::Outgoing::Client.new(version: hs.version, data: "hello from ruby",
                                                   type: :text).to_s)
frame = nil
until (frame = incoming.next)
  raise "no reply" unless sock.wait_readable(10)

  incoming << sock.readpartial(4096)
end
sock.close
runtime.stop
thread.join
raise "echoed #{frame.data.inspect}" unless frame.data == "hello from ruby"

ext = $LOADED_FEATURES.grep(/wirecore_ext/).first
puts "ruby #{RUBY_VERSION}: wirecore #{Wirecore::VERSION} (core #{Wirecore.core_version}) echoed " \
     "#{frame.data.inspect} through the websocket gem (#{File.basename(File.dirname(ext, 3))})"

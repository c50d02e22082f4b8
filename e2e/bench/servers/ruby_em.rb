# Echo server on em-websocket (EventMachine), the Ruby peer of the benchmark.
# Usage: ruby ruby_em.rb [--host H] [--port P] [--chat]
# Chat (--chat, /chat/<room>): the fan-out peer; a text message goes to every
# connection of the room (the sender included) with a loop over its members.
require 'em-websocket'
require 'optparse'

host = '127.0.0.1'
port = 9004
chat = false
OptionParser.new do |o|
  o.on('--host H') { |v| host = v }
  o.on('--port P', Integer) { |v| port = v }
  o.on('--chat') { chat = true }
end.parse!
rooms = Hash.new { |h, k| h[k] = [] }

EM.epoll
EM.set_descriptor_table_size(65_536)
EM.run do
  EM::WebSocket.max_frame_size = 64 * 1024 * 1024
  EM::WebSocket.run(host: host, port: port) do |ws|
    if chat
      room = nil
      ws.onopen { |hs| (room = rooms[hs.path.delete_prefix('/chat/')]) << ws }
      ws.onmessage { |msg| room.each { |peer| peer.send_text(msg) } }
      ws.onclose { room&.delete(ws) }
    else
      # Text and binary arrive through separate callbacks: each goes back as
      # the frame kind it came in.
      ws.onmessage { |msg| ws.send_text(msg) }
      ws.onbinary { |msg| ws.send_binary(msg) }
    end
    ws.onerror { |_e| nil }
  end
  $stdout.puts "listening on #{host}:#{port}"
  $stdout.flush
  trap('TERM') { EM.stop }
  trap('INT') { EM.stop }
end

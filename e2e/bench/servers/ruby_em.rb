# Echo server on em-websocket (EventMachine), the Ruby peer of the benchmark.
# Usage: ruby ruby_em.rb [--host H] [--port P]
require 'em-websocket'
require 'optparse'

host = '127.0.0.1'
port = 9004
OptionParser.new do |o|
  o.on('--host H') { |v| host = v }
  o.on('--port P', Integer) { |v| port = v }
end.parse!

EM.epoll
EM.set_descriptor_table_size(65_536)
EM.run do
  EM::WebSocket.max_frame_size = 64 * 1024 * 1024
  EM::WebSocket.run(host: host, port: port) do |ws|
    # Text and binary arrive through separate callbacks: each goes back as
    # the frame kind it came in.
    ws.onmessage { |msg| ws.send_text(msg) }
    ws.onbinary { |msg| ws.send_binary(msg) }
    ws.onerror { |_e| nil }
  end
  $stdout.puts "listening on #{host}:#{port}"
  $stdout.flush
  trap('TERM') { EM.stop }
  trap('INT') { EM.stop }
end

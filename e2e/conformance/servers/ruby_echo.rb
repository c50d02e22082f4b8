# frozen_string_literal: true

# Conformance echo server on Wirecore's Ruby gem.
# Usage: ruby ruby_echo.rb --port P [--host H] [--max-message BYTES]
# Every text or binary message on any path goes back as it came. Prints
# "listening on H:P" once the listener is up; SIGTERM/SIGINT stop it.
require "optparse"
begin
  require "wirecore"
rescue LoadError
  $LOAD_PATH.unshift File.expand_path("../../../packages/ruby/lib", __dir__)
  require "wirecore"
end

host = "127.0.0.1"
port = 0
max_message = 1 << 20
OptionParser.new do |o|
  o.on("--host H") { |v| host = v }
  o.on("--port P", Integer) { |v| port = v }
  o.on("--max-message BYTES", Integer) { |v| max_message = v }
end.parse!

app = Wirecore::App.new
["/", "/{path:path}"].each do |route|
  app.websocket(route, max_message_size: max_message) do |_request|
    Wirecore::WebSocketResponse.new(on_message: ->(msg) { msg })
  end
end
app.run(host: host, port: port) do |runtime|
  $stdout.puts "listening on #{runtime.host}:#{runtime.port}"
  $stdout.flush
end

# frozen_string_literal: true

# Conformance echo server on Wirecore's Ruby gem.
# Usage: ruby ruby_echo.rb --port P [--host H] [--max-message BYTES]
#                          [--cert FILE --key FILE]   (wss://)
# Every text or binary message on any path goes back as it came, except on
# the /app/... endpoints of the app cases (cases/10-app.json). Prints
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
tls = {}
OptionParser.new do |o|
  o.on("--host H") { |v| host = v }
  o.on("--port P", Integer) { |v| port = v }
  o.on("--max-message BYTES", Integer) { |v| max_message = v }
  o.on("--cert FILE") { |v| tls[:cert] = v }
  o.on("--key FILE") { |v| tls[:key] = v }
end.parse!

NUMBERED = { "type" => "object", "properties" => { "n" => { "type" => "integer" } }, "required" => ["n"] }.freeze

# The endpoints of the app cases; the same in every conformance server.
def app_endpoints(app)
  app.websocket("/app/json", message_schema: NUMBERED) { |m, _| m }
  app.websocket("/app/json-close", message_schema: NUMBERED, on_invalid: :close) { |m, _| m }
  app.websocket("/app/crash") do |_request|
    Wirecore::WebSocketResponse.new(on_message: lambda { |msg|
      raise "the handler failed" if msg.as_text == "crash"

      msg
    })
  end
  # Ruby blocks are synchronous: the stream style is how a handler waits.
  app.websocket("/app/order", stream: true) do |ws|
    ws.each do |msg|
      ws.sleep((msg.as_text.to_i % 3) / 1000.0)
      ws.send(msg)
    end
  end
  app.websocket("/app/slow", stream: true) do |ws|
    ws.sleep(1) # starts late: the peer floods meanwhile
    n = 0
    broken = false
    ws.each do |msg|
      text = msg.as_text
      if text == "end"
        ws.send_text(broken ? "out of order at #{n}" : "got #{n} in order")
        next
      end
      broken ||= text[0, 6].to_i != n
      n += 1 unless broken
      ws.sleep(0.005) if (n % 1000).zero?
    end
  end
end

app = Wirecore::App.new(logger: nil)
app_endpoints(app)
["/", "/{path:path}"].each do |route|
  app.websocket(route, max_message_size: max_message) do |_request|
    Wirecore::WebSocketResponse.new(on_message: ->(msg) { msg })
  end
end
app.run(host: host, port: port, tls: tls.empty? ? nil : tls) do |runtime|
  $stdout.puts "listening on #{runtime.host}:#{runtime.port}"
  $stdout.flush
end

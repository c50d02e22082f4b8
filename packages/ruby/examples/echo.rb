# frozen_string_literal: true

# Callback style: echo every message back with its kind.
#   ruby examples/echo.rb            # serves ws://127.0.0.1:8000/echo
#   ruby examples/echo.rb --smoke-test
require "wirecore"

app = Wirecore::App.new
app.websocket("/echo") do |request|
  Wirecore::WebSocketResponse.new(
    on_connect: -> { puts "connected from #{request.remote_addr}" unless ARGV.include?("--smoke-test") },
    on_message: ->(msg) { msg },
    on_close: ->(code, _reason) { puts "closed with #{code}" unless ARGV.include?("--smoke-test") }
  )
end

if ARGV.include?("--smoke-test")
  app.test_client do |client|
    client.websocket("/echo") do |ws|
      ws.send_text("hello")
      raise "echo failed" unless ws.receive_text == "hello"
    end
  end
  puts "echo.rb ok"
else
  app.run(host: "127.0.0.1", port: Integer(ENV.fetch("PORT", 8000)))
end

# frozen_string_literal: true

# Stream style: the block owns the connection (in its own Fiber) and may push
# at any time; ws.each waits for the next message without blocking others.
#   ruby examples/feed.rb            # ws://127.0.0.1:8000/feed?user=NAME
require "wirecore"

app = Wirecore::App.new
app.websocket("/feed", stream: true, idle_timeout: 30) do |ws|
  ws.send_json(hello: ws.request.query["user"])
  ws.each do |msg|
    break ws.close(1000, "bye") if msg.as_text == "bye"

    ws.send(msg)
  end
end

if ARGV.include?("--smoke-test")
  app.test_client do |client|
    client.websocket("/feed?user=ann") do |ws|
      raise "no greeting" unless ws.receive_json == { "hello" => "ann" }

      ws.send_text("ping")
      raise "no echo" unless ws.receive_text == "ping"
    end
  end
  puts "feed.rb ok"
else
  app.run(host: "127.0.0.1", port: Integer(ENV.fetch("PORT", 8000)))
end

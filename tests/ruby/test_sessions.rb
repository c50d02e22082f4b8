# frozen_string_literal: true

require_relative "test_helper"

# The session rules of docs/sessions.md against the `websocket` gem over real
# sockets: flow control of sends that can wait, the backpressure limit of
# sends that cannot, and the bounded inbox of a stream block.
class TestSessions < Minitest::Test
  include ServerHelpers

  MESSAGES = 2000
  SIZE = 4096

  def rss_bytes(pid = Process.pid)
    line = File.foreach("/proc/#{pid}/status").find { |l| l.start_with?("VmRSS:") }
    flunk("no VmRSS in /proc/#{pid}/status") unless line
    line.split[1].to_i * 1024
  end

  def push_app(**options)
    app = new_app
    filler = "x" * (SIZE - 5)
    app.websocket("/push", stream: true, **options) do |ws|
      ws.receive
      MESSAGES.times { |i| ws.send_text(format("%05d", i) + filler) }
      ws.send_text("done")
      nil while ws.receive
    end
    app.websocket("/flood", serializer: :json) do |_message, ctx|
      (MESSAGES * 4).times { ctx.send_text(filler) } # on the loop thread: nothing can wait
      nil
    end
    app
  end

  # Reads every message, sleeping 2 ms after every 20: a slow reader.
  def read_slowly(client)
    got = []
    loop do
      frame = client.receive_data(timeout: 10)
      flunk("closed with #{frame.code} after #{got.size} messages") if frame.type == :close
      return got if frame.data == "done"

      got << frame.data
      sleep 0.002 if (got.size % 20).zero?
    end
  end

  def check_push(options)
    serving(push_app(**options)) do |port, _|
      client = RealClient.new(port, "/push")
      client.send_text("go")
      got = read_slowly(client)
      assert_equal MESSAGES, got.size
      got.each_with_index do |text, i|
        assert_equal SIZE, text.bytesize
        assert_equal format("%05d", i), text[0, 5]
      end
      client.close
    end
  end

  def test_stream_sends_reach_a_slow_reader_in_full_with_default_options
    check_push({})
  end

  def test_stream_sends_reach_a_slow_reader_in_full_with_a_large_limit
    check_push(max_backpressure: 64 << 20)
  end

  def test_sends_from_another_thread_wait_for_a_slow_reader
    streams = Queue.new
    app = new_app
    app.websocket("/threads", stream: true) do |ws|
      streams << ws
      nil while ws.receive
    end
    serving(app) do |port, _|
      client = RealClient.new(port, "/threads")
      stream = streams.pop
      filler = "z" * (SIZE - 5)
      sender = Thread.new do
        MESSAGES.times { |i| stream.send_text(format("%05d", i) + filler) }
        stream.send_text("done")
      end
      got = read_slowly(client)
      sender.join
      assert_equal MESSAGES, got.size
      assert_equal format("%05d", MESSAGES - 1), got.last[0, 5]
      client.close
    end
  end

  def test_sends_that_cannot_wait_past_max_backpressure_close_with_1008
    serving(push_app) do |port, _|
      client = RealClient.new(port, "/flood")
      client.send_text("{}")
      sleep 0.5 # not reading: the server's queue fills up
      received = 0
      loop do
        frame = client.receive_data(timeout: 10)
        if frame.type == :close
          assert_equal 1008, frame.code
          break
        end
        received += 1
      end
      assert_operator received, :<, MESSAGES * 4
      client.close
    end
  end

  # The server runs in a child process so that its RSS is measured apart from
  # the client's; it checks the order itself and answers "all" or what broke.
  SLOW_SERVER = <<~RUBY
    require "wirecore"
    total = Integer(ENV.fetch("TOTAL"))
    app = Wirecore::App.new(logger: nil)
    app.websocket("/slow", stream: true) do |ws|
      ws.sleep(2) # the peer floods meanwhile
      n = 0
      ws.each do |msg|
        break ws.send_text("out of order at \#{n}") unless msg.as_text[0, 6].to_i == n

        n += 1
        ws.sleep(0.005) if (n % 1000).zero? # slower than its peer
        ws.send_text("all") if n == total
      end
    end
    app.run(port: 0) { |rt| $stdout.puts(rt.port) || $stdout.flush }
  RUBY

  def test_a_flooded_slow_stream_block_stays_bounded_and_gets_everything_in_order
    total = 100_000
    lib = File.expand_path("../../packages/ruby/lib", __dir__)
    args = ENV["WIRECORE_USE_INSTALLED"] == "1" ? [] : ["-I", lib]
    IO.popen([{ "TOTAL" => total.to_s }, RbConfig.ruby, *args, "-e", SLOW_SERVER], "r") do |server|
      port = Integer(server.gets || flunk("the server did not start"))
      client = RealClient.new(port, "/slow")
      base = peak = rss_bytes(server.pid)
      filler = "f" * 506
      total.times do |i|
        client.send_text(format("%06d", i) + filler) # 512 bytes each
        peak = [peak, rss_bytes(server.pid)].max if (i % 2000).zero?
      end
      assert_equal "all", client.receive_data(timeout: 60).data
      peak = [peak, rss_bytes(server.pid)].max
      client.close
      # Unbounded, the inbox would hold what arrived during the first 2 s
      # (most of the 50 MiB sent); bounded, it holds 64 messages.
      warn "server RSS grew by #{(peak - base) >> 10} KiB" if ENV["WIRECORE_TEST_LOG"]
      assert_operator peak - base, :<, 16 << 20, "RSS grew by #{(peak - base) >> 20} MiB"
    ensure
      Process.kill("TERM", server.pid)
    end
  end

  def error_app
    app = new_app
    echo_until_boom = proc do |ws|
      ws.each do |msg|
        raise RangeError, "boom" if msg.as_text == "boom"

        ws.send(msg)
      end
    end
    app.websocket("/handled", stream: true, on_error: ->(err, _ws) { "handled #{err.message}" }, &echo_until_boom)
    app.websocket("/bare", stream: true, &echo_until_boom)
    app.websocket("/typed", message_schema: { "type" => "object" },
                            on_error: ->(_err, _ctx) { raise "the error handler itself fails" }) { |m, _| m }
    app
  end

  def test_a_stream_exception_goes_to_on_error_then_closes_with_1000
    serving(error_app) do |port, _|
      c = RealClient.new(port, "/handled")
      c.send_text("a")
      assert_equal "a", c.receive_data.data
      c.send_text("boom")
      assert_equal "handled boom", c.receive_data.data
      close = c.receive_data
      assert_equal [:close, 1000], [close.type, close.code]
      c.close
    end
  end

  def test_an_unhandled_exception_closes_only_its_connection_with_1011
    serving(error_app) do |port, _|
      a = RealClient.new(port, "/bare")
      b = RealClient.new(port, "/bare")
      a.send_text("boom")
      close = a.receive_data
      assert_equal [:close, 1011], [close.type, close.code]
      b.send_text("still here")
      assert_equal "still here", b.receive_data.data
      a.close
      b.close
    end
  end

  def test_an_on_error_that_raises_leaves_the_invalid_message_to_the_policy
    serving(error_app) do |port, _|
      c = RealClient.new(port, "/typed")
      c.send_text("5")
      reply = JSON.parse(c.receive_data.data)
      assert_equal %w[error validation_failed], reply.values_at("type", "error")
      c.send_text('{"n":1}')
      assert_equal({ "n" => 1 }, JSON.parse(c.receive_data.data))
      c.close
    end
  end
end

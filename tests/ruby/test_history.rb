# frozen_string_literal: true

require_relative "test_helper"

# Topic history: App#topic(pattern, history:, ttl:), envelopes with positions
# and subscribe(topic, since:), against the `websocket` gem over real
# sockets: recovery, truncation reports, MessagePack endpoints, bad
# arguments, and a client reconnecting 20 times while publications keep
# coming.
class TestHistory < Minitest::Test
  include ServerHelpers

  POSITION = /\A[0-9a-f]{16}:[0-9]+\z/

  class MpRoom < Wirecore::WebSocket
    serializer :msgpack
    def on_connect(request) = subscribe("room:m", since: request.query["since"] || "")
  end

  # /room/{name}?since=P subscribes in on_connect, then sends what it found.
  def history_app(history: 1000, ttl: nil, broker: nil)
    app = broker ? new_app(broker: broker) : new_app
    app.topic("room:*", history: history, ttl: ttl)
    app.websocket("/room/{name}") do |request|
      Wirecore::WebSocketResponse.new(
        on_connect: lambda { |ctx|
          rec = ctx.subscribe(request.params["name"], since: request.query["since"] || "")
          ctx.send({ "type" => "recovery" }.merge(rec.transform_keys(&:to_s)))
        }
      )
    end
    app.include(MpRoom, path: "/mp")
    app
  end

  # The replay (or the truncated report) leaves at the upgrade, before what
  # on_connect sent: [client, recovery, messages before it].
  def join(port, path)
    c = RealClient.new(port, path)
    assert c.valid?
    before = []
    loop do
      m = JSON.parse(c.receive_data.data)
      return [c, m, before] if m["type"] == "recovery"

      before << m
    end
  end

  def test_publications_reach_subscribers_in_an_envelope_with_their_position
    app = history_app
    serving(app) do |port, _|
      c, rec, before = join(port, "/room/room:1")
      assert_empty before
      assert_equal [true, nil], [rec["recovered"], rec["reason"]]
      assert_match POSITION, rec["position"]
      epoch = rec["position"].split(":").first
      app.publish("room:1", { "hello" => "world" })
      app.publish("room:1", "text is a string")
      assert_equal({ "topic" => "room:1", "offset" => "#{epoch}:1", "data" => { "hello" => "world" } },
                   JSON.parse(c.receive_data.data))
      assert_equal({ "topic" => "room:1", "offset" => "#{epoch}:2", "data" => "text is a string" },
                   JSON.parse(c.receive_data.data))
      c.close
    end
  end

  def test_with_redis_a_client_recovers_on_another_server_from_the_shared_history
    with_redis do |url|
      a = history_app(broker: url)
      b = history_app(broker: url)
      serving(a) do |port_a, _|
        serving(b) do |port_b, _|
          c, = join(port_a, "/room/room:x")
          (1..3).each { |i| a.publish("room:x", { "n" => i }) } # delivered when Redis announces it
          got = Array.new(3) { JSON.parse(c.receive_data.data) }
          assert_equal %w[1 2 3], got.map { |m| m["offset"].split(":").last }
          c.close
          b.publish("room:x", { "n" => 4 }) # the same sequence from the other server
          d, rec, before = join(port_b, "/room/room:x?since=#{got[0]["offset"]}")
          assert_equal [true, 3], [rec["recovered"], rec["replayed"]]
          epoch = got[0]["offset"].split(":").first
          assert_equal [["#{epoch}:2", 2], ["#{epoch}:3", 3], ["#{epoch}:4", 4]],
                       before.map { |m| [m["offset"], m["data"]["n"]] }
          a.publish("room:x", { "n" => 5 })
          assert_equal 5, JSON.parse(d.receive_data.data)["data"]["n"]
          d.close
        end
      end
    end
  end

  def test_a_client_coming_back_gets_what_it_missed_then_live_ones
    app = history_app
    serving(app) do |port, _|
      c, = join(port, "/room/room:a")
      (1..5).each { |i| app.publish("room:a", { "n" => i }) }
      got = Array.new(5) { JSON.parse(c.receive_data.data) }
      c.close
      (6..8).each { |i| app.publish("room:a", { "n" => i }) }
      c, rec, before = join(port, "/room/room:a?since=#{got[2]['offset']}")
      assert_equal [true, 5], [rec["recovered"], rec["replayed"]]
      app.publish("room:a", { "n" => 9 })
      ns = before.map { |m| m["data"]["n"] } << JSON.parse(c.receive_data.data)["data"]["n"]
      assert_equal [4, 5, 6, 7, 8, 9], ns
      c.close
    end
  end

  def test_lost_positions_are_reported_to_the_handler_and_to_the_client
    app = history_app(history: 3)
    serving(app) do |port, _|
      (1..10).each { |i| app.publish("room:t", { "n" => i }) }
      c, first, = join(port, "/room/room:t")
      c.close
      epoch = first["position"].split(":").first
      [["#{epoch}:5", "too_old"], ["0123456789abcdef:5", "epoch"], ["nonsense", "invalid"]]
        .each_with_index do |(since, reason), i|
        current = "#{epoch}:#{10 + i}"
        c, rec, before = join(port, "/room/room:t?since=#{since}")
        assert_equal [false, reason, current], [rec["recovered"], rec["reason"], rec["position"]]
        assert_equal [{ "topic" => "room:t", "type" => "truncated", "offset" => current }], before
        app.publish("room:t", { "n" => "live" }) # the subscription started all the same
        assert_equal({ "n" => "live" }, JSON.parse(c.receive_data.data)["data"])
        c.close
      end
    end
  end

  def test_msgpack_subscribers_get_the_envelope_in_msgpack
    app = history_app
    serving(app) do |port, _|
      app.publish("room:m", { "n" => 1 })
      app.publish("room:m", { "n" => 2 })
      c, rec, = join(port, "/room/room:m")
      c.close
      epoch = rec["position"].split(":").first
      mp = RealClient.new(port, "/mp?since=#{epoch}:1")
      assert mp.valid?
      app.publish("room:m", { "n" => 3 })
      [2, 3].each do |n|
        f = mp.receive_data
        assert_equal :binary, f.type
        assert_equal({ "topic" => "room:m", "offset" => "#{epoch}:#{n}", "data" => { "n" => n } },
                     Wirecore::Native.decode(f.data.b, :msgpack))
      end
      mp.close
    end
  end

  def test_bad_configuration_and_topics_without_history_are_errors
    app = new_app
    [0, -1, 1_000_001, 2.5, true, nil].each do |bad|
      assert_raises(Wirecore::ConfigError) { app.topic("x", history: bad) }
    end
    [0, -1, "1", Float::INFINITY].each do |bad|
      assert_raises(Wirecore::ConfigError) { app.topic("x", history: 1, ttl: bad) }
    end
    assert_raises(Wirecore::ConfigError) { app.topic("", history: 1) }
    app.topic("x", history: 1)
    assert_raises(Wirecore::ConfigError) { app.topic("x", history: 2) }
    errors = Queue.new
    app.websocket("/s") do
      Wirecore::WebSocketResponse.new(
        on_connect: lambda { |ctx|
          [-> { ctx.subscribe("no-history", since: "") }, -> { ctx.subscribe("x", since: 5) }].each do |f|
            f.call
          rescue StandardError => e
            errors << "#{e.class}: #{e.message}"
          end
          ctx.send_text("done")
        }
      )
    end
    serving(app) do |port, _|
      app.topic("y*", history: 1) # while running: applies at once
      assert_raises(Wirecore::SerializationError) { app.publish("y1", "\x00".b) }
      c = RealClient.new(port, "/s")
      assert_equal "done", c.receive_data.data
      e1 = errors.pop
      e2 = errors.pop
      assert_match(/ConfigError: .*no history/, e1)
      assert_match(/TypeError: since must be a String/, e2)
      c.close
    end
  end

  def test_a_client_reconnecting_20_times_during_steady_publishing_sees_each_once_in_order
    app = history_app(history: 10_000)
    total = 2000
    serving(app) do |port, _|
      publisher = Thread.new do
        (1..total).each do |i|
          app.publish("room:s", { "n" => i })
          sleep 0.005 if (i % 10).zero? # a steady 2,000 per second
        end
      end
      seen = []
      position = ""
      truncated = 0
      21.times do |round|
        c, rec, before = join(port, "/room/room:s?since=#{position}")
        assert rec["recovered"], rec.inspect if round.positive?
        assert publisher.alive?, "the 20th reconnect came after the last publish" if round == 20
        got = 0
        while (round == 20 || got < 80) && seen.last != total
          m = before.empty? ? JSON.parse(c.receive_data.data) : before.shift
          if m["type"] == "truncated"
            truncated += 1
            next
          end
          seen << m["data"]["n"]
          position = m["offset"]
          got += 1
        end
        c.close
      end
      publisher.join
      assert_equal (seen.first..total).to_a, seen, "gap, duplicate or reordering"
      assert_equal 0, truncated
    end
  end
end

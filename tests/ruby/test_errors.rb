# frozen_string_literal: true

require_relative "test_helper"

# One error taxonomy (the core's categories become the same classes in every
# package) and the connection rules through the extension: fail, invalid, the
# queued-message bound and drain, with a real client on 127.0.0.1.
class TestErrors < Minitest::Test
  include ServerHelpers

  CLASSES = {
    "internal" => "InternalError",
    "config" => "ConfigError",
    "protocol" => "ProtocolError",
    "too_big" => "MessageTooBigError",
    "deserialize" => "DeserializationError",
    "serialize" => "SerializationError",
    "validation" => "ValidationError",
    "unknown_message" => "UnknownMessageError",
    "closed" => "ConnectionClosedError",
    "backpressure" => "BackpressureError",
    "handler" => "HandlerError"
  }.freeze

  def test_classes_and_codes_come_from_the_core_list
    rows = Wirecore::Native.errors
    assert_equal 23, rows.size
    rows.each do |name, code, category, class_name|
      assert_equal CLASSES.fetch(category), class_name, name
      klass = Wirecore.const_get(class_name)
      assert_operator klass, :<, Wirecore::Error
      assert_equal class_name, klass.name.split("::").last
      assert_equal name, Wirecore::Native.error_name(code)
    end
    assert_equal CLASSES.values.sort, rows.map(&:last).uniq.sort
    [-12, -13, -22].each { |retired| assert_equal "EUNKNOWN", Wirecore::Native.error_name(retired) }
    assert_equal 64, Wirecore::Native::DEFAULT_MAX_QUEUED
  end

  def test_old_config_class_names_are_the_config_error_class
    assert_same Wirecore::ConfigError, Wirecore::SchemaError
    assert_same Wirecore::ConfigError, Wirecore::RouteError
    assert_same Wirecore::ConfigError, Wirecore::ListenError
  end

  def test_codec_and_config_errors_raise_their_category_class
    assert_raises(Wirecore::SerializationError) { Wirecore::Native.encode(Float::NAN, :json) } if Wirecore::Native.respond_to?(:encode)
    server = Wirecore::Native::Server.new({})
    err = assert_raises(Wirecore::ConfigError) { server.add_endpoint("/x/{", Object.new, {}) }
    assert_equal :EROUTE, err.code
    err = assert_raises(Wirecore::ConfigError) do
      server.add_endpoint("/s", Object.new, { codec: :json, message_schemas: ['{"type": 5}'] })
    end
    assert_equal :ESCHEMA, err.code
  end

  def test_message_errors_reach_on_error_as_their_category_class
    errors = Queue.new
    app = new_app
    app.websocket("/m", message_schema: { "type" => "integer" }, max_message_size: 64,
                        on_error: ->(err, _ctx) { errors << err; { "class" => err.class.name.split("::").last } }) do |m, _|
      { "got" => m }
    end
    serving(app) do |port|
      c = RealClient.new(port, "/m")
      c.send_text('"text"')
      assert_equal({ "class" => "ValidationError" }, JSON.parse(c.receive_data.data))
      c.send_text("not json")
      assert_equal({ "class" => "DeserializationError" }, JSON.parse(c.receive_data.data))
      c.close
    end
    assert_kind_of Wirecore::ValidationError, errors.pop
    assert_kind_of Wirecore::DeserializationError, errors.pop
  end

  # A native server driven by a thread of its own; jobs run between process
  # calls, on the loop's thread, as every core call must.
  class Driver
    attr_reader :server, :port

    def initialize(handler, opts = {})
      @server = Wirecore::Native::Server.new({})
      @server.add_endpoint("/r", handler, opts)
      @server.listen("127.0.0.1", 0)
      @port = @server.port
      @jobs = Queue.new
      @rd, @wr = IO.pipe
      @thread = Thread.new { drive }
    end

    # Run job on the loop's thread; its result, or its exception re-raised here.
    def run(&job)
      done = Queue.new
      @jobs << lambda do
        done << [true, job.call]
      rescue StandardError => e
        done << [false, e]
      end
      @wr.write("x")
      ok, value = Timeout.timeout(5) { done.pop }
      raise value unless ok

      value
    end

    def stop
      run { @server.shutdown(200) }
      @thread.join(5)
      @rd.close
      @wr.close
    end

    private

    def drive
      loop do
        alive = @server.process
        @jobs.pop.call until @jobs.empty?
        break unless alive

        t = @server.timeout
        @server.wait(t.negative? || t > 20 ? 20 : t, @rd.fileno, -1)
      end
    end
  end

  # Records what the core calls; on_message customizes _message.
  class Handler
    attr_reader :conns, :messages, :errors, :closes
    attr_accessor :drains, :verdict, :on_message

    def initialize(&on_message)
      @conns = []
      @messages = Queue.new
      @errors = Queue.new
      @closes = Queue.new
      @drains = 0
      @verdict = false
      @on_message = on_message
    end

    def _connect(conn, _request)
      @conns << conn
      0
    end

    def _message(conn, _kind, data, _value, _index)
      @messages << data
      @on_message&.call(conn, data)
    end

    def _close(_conn, code, _reason) = @closes << code

    def _error(_conn, err)
      @errors << err
      @verdict
    end

    def _drain(_conn) = @drains += 1
  end

  # Queue#pop that fails the test instead of hanging.
  def pop(queue) = Timeout.timeout(5) { queue.pop }

  def with_driver(handler, opts = {})
    driver = Driver.new(handler, opts)
    yield driver
  ensure
    driver&.stop
  end

  def test_too_big_message_is_message_too_big_error
    h = Handler.new
    with_driver(h, { max_message_size: 16 }) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("x" * 100)
      frame = c.receive_data
      assert_equal :close, frame.type
      assert_equal 1009, frame.code
      err = pop(h.errors)
      assert_instance_of Wirecore::MessageTooBigError, err
      assert_equal :ETOOBIG, err.code
      c.close
    end
  end

  def test_fail_hands_error_the_exception_then_closes_1011
    boom = RuntimeError.new("boom")
    results = Queue.new
    h = Handler.new { |conn, _| results << conn.fail(boom) }
    with_driver(h) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("go")
      frame = c.receive_data
      assert_equal [:close, 1011, "internal error"], [frame.type, frame.code, frame.data]
      assert_equal false, pop(results)
      assert_same boom, pop(h.errors)
      c.close
    end
  end

  def test_fail_handled_by_error_keeps_the_connection
    results = Queue.new
    h = Handler.new do |conn, _|
      results << conn.fail(ArgumentError.new("x"))
      conn.send_text("still here")
    end
    h.verdict = true
    with_driver(h) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("go")
      assert_equal "still here", c.receive_data.data
      assert_equal true, pop(results)
      c.close
    end
  end

  def test_invalid_applies_the_endpoint_policy_for_a_ruby_codec
    err = Wirecore::ValidationError.new("must be a number")
    err.instance_variable_set(:@path, "/n")
    err.instance_variable_set(:@keyword, "type")
    results = Queue.new
    h = Handler.new { |conn, _| results << conn.invalid(err) }
    with_driver(h) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("x")
      assert_equal({ "type" => "error", "error" => "validation_failed", "path" => "/n", "keyword" => "type",
                     "message" => "must be a number" }, JSON.parse(c.receive_data.data))
      assert_equal false, pop(results)
      assert_same err, pop(h.errors)
      assert_raises(TypeError) { d.run { h.conns[0].invalid(RuntimeError.new("no")) } }
      c.close
    end
  end

  def test_held_messages_stop_reading_at_the_bound_and_resume_at_half
    h = Handler.new { |conn, _| conn.hold }
    with_driver(h, { max_queued_messages: 2 }) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("1")
      assert_equal "1", pop(h.messages)
      c.send_text("2")
      assert_equal "2", pop(h.messages)
      (3..7).each { |i| c.send_text(i.to_s) }
      sleep 0.2
      assert_equal 0, h.messages.size, "read past the bound"
      conn = h.conns[0]
      assert_equal 2, d.run { conn.queued }
      d.run { conn.consumed(1) }
      got = [pop(h.messages)]
      d.run { conn.consumed(conn.queued) }
      got << pop(h.messages) until got.size == 5
      assert_equal %w[3 4 5 6 7], got
      assert_raises(ArgumentError) { d.run { conn.consumed(conn.queued + 1) } }
      c.close
    end
  end

  def test_drain_follows_a_false_writable
    chunk = "x" * 65_536
    waiting = Queue.new
    h = Handler.new do |conn, _|
      64.times do
        conn.send_binary(chunk)
        unless conn.writable?
          waiting << true
          break
        end
      end
    end
    with_driver(h, { send_high_water: 16_384, max_backpressure: 64 << 20 }) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_text("go")
      assert pop(waiting)
      received = 0
      received += c.receive_data.data.bytesize until d.run { h.drains } == 1 && received >= 65_536
      assert_equal 1, d.run { h.drains }
      assert d.run { h.conns[0].writable? }
      c.close
    end
  end

  def test_a_send_after_close_raises_connection_closed_error
    h = Handler.new
    with_driver(h) do |d|
      c = RealClient.new(d.port, "/r")
      c.send_frame("", type: :close, code: 1000)
      assert_equal 1000, pop(h.closes)
      err = assert_raises(Wirecore::ConnectionClosedError) { d.run { h.conns[0].send_text("late") } }
      assert_equal :ECLOSED, err.code
      c.close
    end
  end

  def test_max_queued_messages_is_an_endpoint_option
    app = new_app
    app.websocket("/q", max_queued_messages: 8) { |_req| Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    assert_raises(ArgumentError) { app.websocket("/bad", max_queue: 8) { |_| nil } }
  end
end

# frozen_string_literal: true

module Wirecore
  # One accepted connection as the Ruby layer sees it. The core calls the
  # endpoint's handler, which forwards to the session stored on the native
  # connection (conn.data). Subclasses implement the four endpoint styles.
  #
  # Sessions never let a StandardError escape into the core: an exception is
  # reported with Conn#fail, which asks the application's error handlers
  # (#error) and otherwise closes that connection with 1011; it is logged, and
  # every other connection carries on.
  class Session
    attr_reader :conn, :request, :endpoint, :runtime

    def initialize(endpoint, conn, request, runtime)
      @endpoint = endpoint
      @conn = conn
      @request = request
      @runtime = runtime
      @started = false
    end

    # Before the upgrade; may raise Reject.
    def connect; end

    # After the upgrade (run once, right after the core's process call that
    # accepted the connection, or before the first message, whichever is first).
    def start_once
      return if @started

      @started = true
      flush_queued
      guard { start } unless @conn.closed?
    end

    def start; end
    def message(kind, data, value, index); end
    # The core's _error: an invalid message (validation, unknown message, ...)
    # or a failure reported with Conn#fail, for the application's error
    # handler. True when a handler took it (its return value is sent; the
    # core's default reply, or its 1011, is skipped). A handler that raises
    # leaves the error to the core: the invalid-message policy, or 1011.
    def error(err)
      return false if @failing

      begin
        handled, result = rescue_exception(err)
      rescue ConnectionClosedError
        return true
      rescue StandardError => e
        @endpoint.log_exception(e, @request) unless e.equal?(err)
        return false
      end
      return false unless handled

      guard { reply(result) }
      true
    end
    # The connection closed: release the sends waiting for it to drain.
    def closed(_code, _reason)
      drained
    end

    # Send what a handler returned: nil sends nothing, a WebSocketMessage keeps
    # its kind, anything else goes through the endpoint's serializer (raw
    # endpoints: a String as is, other objects as JSON text).
    def reply(obj)
      return if obj.nil?
      return (@queued ||= []) << obj unless @started

      if @runtime.loop_thread?
        send_now(obj)
      else
        from_any_thread { send_now(obj) }
      end
      flow
    end

    # A raw send (:send_text / :send_binary) of str.
    def raw(method, str)
      from_any_thread { @conn.public_send(method, str) }
      flow
    end

    # Flow control (docs/sessions.md): while the connection is not writable
    # (more than its send_high_water queued), a send from another thread or
    # from the stream's own Fiber waits for the core's _drain or the close. A
    # send made by a block the loop thread runs directly cannot wait;
    # max_backpressure (1008) bounds it.
    def flow
      return nil if @conn.writable? || @conn.closed?

      if !@runtime.loop_thread?
        wait_drained_thread
      elsif can_wait?
        wait_drained
      end
      nil
    end

    # The core's _drain (or the close): wake every waiting sender.
    def drained
      waiters = DRAIN_LOCK.synchronize do
        w = @drain_waiters
        @drain_waiters = nil
        w
      end
      waiters&.each(&:call)
    end

    DRAIN_LOCK = Mutex.new
    private_constant :DRAIN_LOCK

    private def on_drain(&blk)
      DRAIN_LOCK.synchronize { (@drain_waiters ||= []) << blk }
    end

    # Register first, then look again: a _drain between the two is not lost.
    private def wait_drained_thread
      done = Thread::Queue.new
      on_drain { done << true }
      return if @conn.writable? || @conn.closed?

      @runtime.wake
      done.pop
    end

    # Sends may come from another Ruby thread: the GVL keeps them apart from
    # the loop thread's process calls, and the wake-up makes the loop look
    # at the core again (it may have output left to flush).
    def from_any_thread
      yield
    ensure
      @runtime.wake unless @runtime.loop_thread?
    end

    private def send_now(obj)
      case obj
      when WebSocketMessage
        obj.text? ? @conn.send_text(obj.data) : @conn.send_binary(obj.data)
      when String
        if @endpoint.codec == :raw
          obj.encoding == Encoding::BINARY ? @conn.send_binary(obj) : @conn.send_text(obj)
        else
          @conn.send_value(obj)
        end
      else
        @endpoint.codec == :raw ? @conn.send_text(Native.encode(obj, :json)) : @conn.send_value(obj)
      end
      nil
    end

    def close(code = 1000, reason = "")
      from_any_thread { @conn.close(code, reason.to_s) }
    end

    private

    def flush_queued
      queued = @queued
      @queued = nil
      queued&.each { |obj| guard { reply(obj) } }
    end

    # Run user code; what escapes goes to #unhandled.
    def guard
      yield
    rescue ConnectionClosedError
      nil # the peer left while we were answering: nothing to tell
    rescue StandardError => e
      unhandled(e)
    end

    # A handler raised: Conn#fail gives it to the application's error
    # handler (#error; its return value is sent), else the core closes 1011.
    def handle_exception(exc)
      @endpoint.log_exception(exc, @request) unless @conn.fail(exc) || @conn.closed?
    end

    # [handled?, reply]: subclasses look up their error handlers.
    def rescue_exception(_exc) = [false, nil]

    # True when the current code may suspend until the connection drains.
    def can_wait? = false

    # 1011 through Conn#fail without asking the error handlers (one failed).
    def unhandled(exc)
      @endpoint.log_exception(exc, @request)
      @failing = true
      @conn.fail(exc)
      nil
    ensure
      @failing = false
    end
  end

  # Callback style: the endpoint block returned a WebSocketResponse.
  class CallbackSession < Session
    def connect
      @response = @endpoint.block.call(@request)
      return if @response.is_a?(WebSocketResponse)

      raise TypeError, "websocket block must return a Wirecore::WebSocketResponse, got #{@response.class}"
    end

    def start
      handler = @response.on_connect or return
      handler.arity.zero? ? handler.call : handler.call(context)
    end

    def message(kind, data, _value, _index)
      start_once unless @started
      handler = @response.on_message or return
      msg = WebSocketMessage.new(data, kind)
      begin
        result = handler.arity == 2 || handler.arity < -1 ? handler.call(msg, context) : handler.call(msg)
      rescue ConnectionClosedError
        return
      rescue StandardError => e
        return handle_exception(e)
      end
      guard { reply(result) }
    end

    def closed(code, reason)
      super
      guard { @response.on_close&.call(code, reason) }
    end

    private

    # The connection object on_connect(ctx) and on_message(msg, ctx) get.
    def context = (@context ||= Context.new(self))

    def rescue_exception(exc)
      handler = @response.on_error or return [false, nil]
      [true, handler.call(exc)]
    end
  end

  # What a typed handler gets next to the message: the request and a way to
  # push messages or close.
  class Context
    attr_reader :request

    def initialize(session)
      @session = session
      @request = session.request
    end

    def params = @request.params
    def query = @request.query
    def headers = @request.headers

    # Send obj through the endpoint's serializer (a WebSocketMessage as is).
    def send(obj) = @session.reply(obj)
    def send_text(str) = @session.raw(:send_text, str)
    def send_binary(str) = @session.raw(:send_binary, str)
    def close(code = 1000, reason = "") = @session.close(code, reason)
    def closed? = @session.conn.closed?
    # Bytes queued for this connection and not yet written to the socket.
    def buffered_amount = @session.conn.buffered_amount

    # Topics: receive every app.publish(topic, ...) until unsubscribed or
    # closed (Wirecore::ConfigError for a bad topic or too many topics).
    # since: a position on a history topic (App#topic): replay after it
    # first; returns {recovered:, reason:, position:, replayed:}.
    def subscribe(topic, since: nil) = @session.conn.subscribe(topic, since)
    # false when the connection was not subscribed.
    def unsubscribe(topic) = @session.conn.unsubscribe(topic)
    # The connection's topics (Array of String, in no particular order).
    def topics = @session.conn.topics
    def __wirecore_conn = @session.conn
  end

  # Typed style: block(message, ctx) with message decoded (and validated)
  # by the core; a non-nil return value is sent.
  class TypedSession < Session
    def initialize(*)
      super
      @ctx = Context.new(self)
    end

    def message(_kind, _data, value, _index)
      start_once
      begin
        result = @endpoint.block.call(value, @ctx)
      rescue ConnectionClosedError
        return
      rescue StandardError => e
        return handle_exception(e)
      end
      guard { reply(result) }
    end

    private

    def rescue_exception(exc)
      handler = @endpoint.on_error or return [false, nil]
      [true, handler.call(exc, @ctx)]
    end
  end

  # The connection object of a stream-style endpoint (`stream: true`).
  class Stream
    attr_reader :request, :close_code, :close_reason

    def initialize(session)
      @session = session
      @request = session.request
      @queue = []
      @closed = false
      @waiting = false
    end

    # WebSocketMessage: same kind; String: text (binary when ASCII-8BIT);
    # anything else: JSON text.
    def send(msg) = @session.reply(msg)
    def send_text(str) = @session.raw(:send_text, str)
    def send_binary(str) = @session.raw(:send_binary, str)

    def send_json(obj = nil, **kw)
      @session.raw(:send_text, Native.encode(obj.nil? ? kw : obj, :json))
    end

    # The next message (a WebSocketMessage), or nil once the connection has
    # closed (or when timeout seconds pass first). Suspends this
    # connection's Fiber until a message arrives; other connections and the
    # loop carry on meanwhile.
    def receive(timeout: nil)
      deadline = timeout && (@session.runtime.now + timeout)
      loop do
        return take unless @queue.empty?
        return nil if @closed
        return nil if deadline && @session.runtime.now >= deadline

        suspend(deadline)
      end
    end

    # Pause this block for seconds without blocking the loop; messages that
    # arrive meanwhile wait in order for #receive. When the connection ends
    # meanwhile (the client closed, reset or left), the block is cancelled:
    # Wirecore::ConnectionClosedError is raised here (its ensure clauses run;
    # uncaught, it ends the block quietly).
    def sleep(seconds)
      deadline = @session.runtime.now + seconds
      @sleeping = true
      suspend(deadline) until @closed || @session.runtime.now >= deadline
      raise ConnectionClosedError, "connection closed (#{@close_code})" if @closed

      nil
    ensure
      @sleeping = false
    end

    def each
      return enum_for(:each) unless block_given?

      while (msg = receive)
        yield msg
      end
      self
    end

    def close(code = 1000, reason = "") = @session.close(code, reason)
    def closed? = @closed
    # Waiting in #receive (a message should resume it), not in #sleep.
    def waiting? = @waiting && !@sleeping
    # Bytes queued for this connection and not yet written to the socket.
    def buffered_amount = @session.conn.buffered_amount

    # Topics: receive every app.publish(topic, ...) until unsubscribed or
    # closed (Wirecore::ConfigError for a bad topic or too many topics).
    # since: a position on a history topic (App#topic): replay after it
    # first; returns {recovered:, reason:, position:, replayed:}.
    def subscribe(topic, since: nil) = @session.conn.subscribe(topic, since)
    # false when the connection was not subscribed.
    def unsubscribe(topic) = @session.conn.unsubscribe(topic)
    # The connection's topics (Array of String, in no particular order).
    def topics = @session.conn.topics
    def __wirecore_conn = @session.conn

    # Called by the session. Held messages count against the endpoint's
    # max_queued_messages: past it the core stops reading the connection.
    def push(msg)
      @queue << msg
      @session.conn.hold
    end

    def mark_closed(code, reason)
      @closed = true
      @close_code = code
      @close_reason = reason
    end

    private

    def take
      @session.conn.consumed(1) unless @session.conn.closed?
      @queue.shift
    end

    # Yield to the loop until a message, the close, or the deadline resumes us.
    def suspend(deadline)
      raise Error, "Stream#receive must be called from the stream's own block" unless @session.fiber == Fiber.current

      timer = deadline && @session.runtime.add_timer(deadline) { @session.resume_if(self) }
      @waiting = true
      begin
        Fiber.yield
      ensure
        @waiting = false
        @session.runtime.cancel_timer(timer) if timer
      end
    end
  end

  # Stream style: the block owns the connection in its own Fiber, resumed
  # when its next message arrives, so a wait never blocks the loop.
  class StreamSession < Session
    attr_reader :fiber

    def initialize(*)
      super
      @stream = Stream.new(self)
    end

    def start
      @fiber = Fiber.new do
        @endpoint.block.call(@stream)
        @conn.close(1000, "") unless @conn.closed?
      rescue ConnectionClosedError
        nil
      rescue StandardError => e
        handle_exception(e)
        @conn.close(1000, "") unless @conn.closed?
      end
      @fiber.resume
    end

    def message(kind, data, _value, _index)
      start_once
      return unless @fiber&.alive?

      @stream.push(WebSocketMessage.new(data, kind))
      @fiber.resume if @stream.waiting?
    end

    def closed(code, reason)
      super
      @stream.mark_closed(code, reason)
      @fiber.resume if @fiber&.alive? && @stream.instance_variable_get(:@waiting)
    end

    # A timer fired: resume the block if it is still suspended.
    def resume_if(stream)
      @fiber.resume if @fiber&.alive? && stream.instance_variable_get(:@waiting)
    end

    private

    def can_wait? = Fiber.current.equal?(@fiber)

    # Suspend the block's Fiber until the core reports the connection drained.
    def wait_drained
      on_drain { @fiber.resume if @fiber.alive? }
      Fiber.yield
    end

    def rescue_exception(exc)
      handler = @endpoint.on_error or return [false, nil]
      [true, handler.call(exc, @stream)]
    end
  end

  # Class style: one instance of a Wirecore::WebSocket subclass per
  # connection; the core's dispatcher picks the receive_* method.
  class ClassSession < Session
    attr_reader :socket

    def initialize(*)
      super
      @socket = @endpoint.klass.allocate
      @socket.__send__(:__wirecore_attach, self)
      @socket.__send__(:initialize)
    end

    def connect
      @socket.on_connect(@request)
    end

    def message(_kind, _data, value, index)
      start_once
      method = @endpoint.receiver_method(index)
      begin
        result = @socket.public_send(method, value)
      rescue ConnectionClosedError
        return
      rescue StandardError => e
        return handle_exception(e)
      end
      guard { reply(result) }
    end

    def closed(code, reason)
      super
      guard { @socket.on_disconnect(code, reason) }
    end

    private

    def call_rescue(handler, err)
      handler.is_a?(Symbol) ? @socket.__send__(handler, err) : @socket.instance_exec(err, &handler)
    end

    def rescue_exception(exc)
      handler = @endpoint.klass.rescue_handler_for(exc) or return [false, nil]
      [true, call_rescue(handler, exc)]
    end
  end
end

# frozen_string_literal: true

require "logger"

module Wirecore
  # A set of WebSocket endpoints and the server options they run with.
  class App
    attr_reader :endpoints, :logger

    # max_connections: beyond it the handshake gets 503 (nil: unlimited)
    # max_handshake_size: bytes of request head (default 8 KiB)
    # handshake_timeout: seconds (default 10)
    # shutdown_timeout: seconds a graceful shutdown waits for closes (default 5)
    # logger: where unhandled handler exceptions are reported (nil: nowhere)
    # broker: a backplane URL, "redis://[[user]:password@]host[:port][/db]":
    #   publishes reach subscribers in every process attached to it
    #   (docs/scaling.md); its state changes go to the logger
    # Per-client limits (docs/security.md; nil or 0: off): max_connections_per_address,
    #   handshake_rate (upgrade requests per second per address) and
    #   handshake_burst answer 429; trusted_proxies: addresses or CIDRs whose
    #   X-Forwarded-For / Forwarded header names the client
    # Endpoint options given here (max_message_size:, idle_timeout:, ...) are
    # defaults for every endpoint of the app.
    attr_reader :broker

    def initialize(max_connections: nil, max_handshake_size: nil, handshake_timeout: nil,
                   shutdown_timeout: 5, logger: Logger.new($stderr, level: Logger::WARN),
                   broker: nil, max_connections_per_address: nil, handshake_rate: nil,
                   handshake_burst: nil, trusted_proxies: nil, **defaults)
      unknown = defaults.keys - Endpoint::LIMIT_KEYS
      raise ArgumentError, "unknown option(s): #{unknown.join(', ')}" unless unknown.empty?

      @defaults = defaults
      @endpoints = []
      @server_options = {
        max_connections: max_connections,
        max_handshake_size: max_handshake_size,
        handshake_timeout_ms: handshake_timeout && (handshake_timeout * 1000).round,
        max_connections_per_address: Endpoint.limit(:max_connections_per_address,
                                                    max_connections_per_address, 2**32),
        handshake_rate: Endpoint.limit(:handshake_rate, handshake_rate, 2**32),
        handshake_burst: Endpoint.limit(:handshake_burst, handshake_burst, 2**32),
        trusted_proxies: App.proxy_list(trusted_proxies)
      }
      @shutdown_timeout = shutdown_timeout
      @logger = logger
      @broker = broker
    end

    # Register an endpoint on a route pattern ("/chat/{room}", "/n/{id:int}",
    # "/files/{rest:path}"). The block's style follows the arguments:
    #   stream: true                          block(ws) owns the connection
    #   message_schema:/response_schema:, or a block taking two arguments
    #                                         block(message, ctx) -> reply
    #   otherwise                             block(request) -> WebSocketResponse
    # serializer: :json (default) or :msgpack for the typed style.
    # on_error: ->(error, ctx) { reply } for the typed and stream styles.
    # Limits: max_message_size:, idle_timeout:, pong_timeout:, max_backpressure:,
    # max_queued_messages: (received messages waiting before the core stops
    # reading; default 64), send_timeout: (seconds a write in flight may take
    # before a 1008 close; default 30; false: never), max_message_fragments:
    # (frames per message, default 4096), allowed_origins:, subprotocols:,
    # on_invalid: (:reply, :close, :ignore).
    def websocket(path, message_schema: nil, response_schema: nil, stream: false, serializer: nil,
                  on_error: nil, **limits, &block)
      raise ArgumentError, "websocket needs a block" unless block

      style = if stream then :stream
              elsif message_schema || response_schema || serializer || block.arity == 2 then :typed
              else :callback
              end
      codec = style == :typed ? (serializer || :json) : :raw
      check_serializer(codec) if style == :typed
      @endpoints << Endpoint.new(path, style: style, codec: codec, block: block,
                                       message_schemas: message_schema ? [message_schema] : [],
                                       response_schema: response_schema, on_error: on_error,
                                       logger: @logger, **@defaults, **limits)
      self
    end

    # Register a Wirecore::WebSocket subclass (its `path`, or path:).
    def include(klass, path: nil, **limits)
      raise ArgumentError, "#{klass} is not a Wirecore::WebSocket subclass" unless klass < WebSocket

      route = path || klass.path or raise ArgumentError, "#{klass} has no path"
      @endpoints << Endpoint.new(route, style: :class, codec: klass.serializer, klass: klass,
                                        message_schemas: klass.receivers.map(&:last),
                                        response_schema: klass.response_schema, logger: @logger,
                                        **@defaults, **klass.inherited_options, **limits)
      self
    end

    # Serve until Ctrl-C / SIGTERM, then shut down gracefully. The block, if
    # given, gets the Runtime once listening (its #port is the bound port).
    # workers: N > 1 serves from N processes sharing the port under a
    # supervisor (this process): a worker that dies is restarted, SIGHUP
    # replaces them one at a time. Call it before starting threads.
    def run(host: "127.0.0.1", port: 8000, workers: 1, &block)
      return supervise(workers, host, port, &block) if workers > 1

      runtime = @runtime = Runtime.new(self, host: host, port: port)
      yield runtime if block_given?
      runtime.run
      nil
    end

    # Serve from a background thread; returns [runtime, thread]. runtime.stop
    # shuts it down; join the thread after.
    def start(host: "127.0.0.1", port: 0)
      runtime = @runtime = Runtime.new(self, host: host, port: port)
      thread = Thread.new { runtime.run }
      thread.report_on_exception = false
      [runtime, thread]
    end

    # Run the app on 127.0.0.1 (a free port) for the block's duration and
    # yield a TestClient speaking real WebSocket over TCP to it.
    def test_client(timeout: 5)
      runtime, thread = start
      result = yield TestClient.new("127.0.0.1", runtime.port, timeout: timeout)
      result
    ensure
      if runtime
        runtime.stop
        thread.join
      end
    end

    # Send message to every connection subscribed to topic but exclude (a
    # connection object: ws, ctx or a WebSocket endpoint). A String goes as
    # a text frame, a binary (Encoding::BINARY) String as a binary frame;
    # any other value is encoded once per codec in use, each subscriber
    # getting its endpoint's encoding. Returns the number of connections it
    # was queued for (0 when nobody is subscribed or the app is not running).
    # Callable from any thread. ConfigError for a bad topic.
    def publish(topic, message, exclude: nil)
      message = message.text? ? message.as_text : message.as_binary if message.is_a?(WebSocketMessage)
      conn = exclude&.__wirecore_conn
      runtime = @runtime
      return check_topic(topic) && 0 unless runtime

      runtime.publish(topic, message, conn)
    end

    # How many connections are subscribed to topic.
    def subscriber_count(topic)
      runtime = @runtime
      return check_topic(topic) && 0 unless runtime

      runtime.subscriber_count(topic)
    end

    def server_options = @server_options

    # trusted_proxies: nil, or an Array of addresses / CIDRs as Strings.
    def self.proxy_list(list)
      return nil if list.nil?
      raise ConfigError, "trusted_proxies is an Array of addresses or CIDRs" unless list.is_a?(Array)

      list.map(&:to_s)
    end
    def shutdown_timeout_ms = (@shutdown_timeout * 1000).round

    # A broker state report from the core: one log line per change.
    def broker_state(state, message)
      @logger&.send(state == 2 ? :warn : :info, "wirecore: broker: #{message}")
    end

    private

    def check_topic(topic)
      raise TypeError, "topic must be a String, not #{topic.class}" unless topic.is_a?(String)
      raise ConfigError, "a topic is 1..256 bytes" unless topic.bytesize.between?(1, 256)

      true
    end

    def supervise(workers, host, port, &block)
      raise ArgumentError, "workers need a fixed port (each worker would pick its own)" if port.zero?

      status = Native.supervise(workers, "wirecore") do |_index|
        # Ruby's own handlers again (the supervisor's were reset by the fork)
        %w[INT TERM].each { |sig| trap(sig, "DEFAULT") }
        run(host: host, port: port, &block)
        0
      end
      exit(status) unless status.zero?
      nil
    end

    def check_serializer(codec)
      return if %i[json msgpack].include?(codec)

      raise ArgumentError, "serializer must be :json or :msgpack, got #{codec.inspect}"
    end
  end
end

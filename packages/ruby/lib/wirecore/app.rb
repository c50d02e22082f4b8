# frozen_string_literal: true

require "json"
require "logger"

module Wirecore
  # A set of WebSocket endpoints and the server options they run with.
  class App
    attr_reader :endpoints, :logger

    # max_connections: beyond it the handshake gets 503 (nil: unlimited)
    # max_handshake_size: bytes of request head (default 8 KiB)
    # handshake_timeout: seconds (default 10)
    # shutdown_timeout: seconds a graceful shutdown waits for closes (default 5)
    # max_buffered_bytes: memory budget over all connections (nil: 256 MiB, or
    #   a quarter of the memory available when less; false: none; docs/limits.md)
    # max_topics_per_conn: topics one connection may subscribe to (nil or 0:
    #   1024); past it subscribe raises ConfigError
    # logger: where unhandled handler exceptions are reported (nil: nowhere);
    #   when it takes INFO, the core's connection events go there too
    #   (open, close, reject, error; docs/operations.md)
    # metrics_path:, health_path: answer plain GETs on these paths on the
    #   WebSocket port (Prometheus text; a JSON health check); metrics_port:
    #   serve both (at /metrics and /health unless set) on a port of their own
    # broker: a backplane URL, "redis://[[user]:password@]host[:port][/db]":
    #   publishes reach subscribers in every process attached to it
    #   (docs/scaling.md); its state changes go to the logger
    # Per-client limits (docs/security.md; nil or 0: off): max_connections_per_address,
    #   handshake_rate (upgrade requests per second per address) and
    #   handshake_burst answer 429; trusted_proxies: addresses or CIDRs whose
    #   X-Forwarded-For / Forwarded header names the client
    # Endpoint options given here (max_message_size:, idle_timeout:, ...) are
    # defaults for every endpoint of the app.
    attr_reader :broker, :metrics_path, :health_path, :metrics_port

    def initialize(max_connections: nil, max_handshake_size: nil, handshake_timeout: nil,
                   shutdown_timeout: 5, logger: Logger.new($stderr, level: Logger::WARN),
                   broker: nil, max_connections_per_address: nil, handshake_rate: nil,
                   handshake_burst: nil, trusted_proxies: nil, metrics_path: nil, health_path: nil,
                   metrics_port: nil, max_buffered_bytes: nil, max_topics_per_conn: nil, **defaults)
      unknown = defaults.keys - Endpoint::LIMIT_KEYS
      raise ArgumentError, "unknown option(s): #{unknown.join(', ')}" unless unknown.empty?

      @defaults = defaults
      @endpoints = []
      @server_options = {
        max_connections: max_connections,
        max_handshake_size: max_handshake_size,
        handshake_timeout_ms: handshake_timeout && (handshake_timeout * 1000).round,
        max_buffered_bytes: max_buffered_bytes == false ? (2**64) - 1 : max_buffered_bytes,
        max_connections_per_address: Endpoint.limit(:max_connections_per_address,
                                                    max_connections_per_address, 2**32),
        handshake_rate: Endpoint.limit(:handshake_rate, handshake_rate, 2**32),
        handshake_burst: Endpoint.limit(:handshake_burst, handshake_burst, 2**32),
        max_topics_per_conn: Endpoint.limit(:max_topics_per_conn, max_topics_per_conn, 2**32),
        trusted_proxies: App.proxy_list(trusted_proxies)
      }
      @shutdown_timeout = shutdown_timeout
      @logger = logger
      @broker = broker
      @metrics_path = metrics_path
      @health_path = health_path
      @metrics_port = metrics_port
      @histories = []
    end

    # Every counter of the running server as a Hash with string keys
    # (docs/operations.md), summed over the workers; nil while not running.
    def stats
      runtime = @runtime
      runtime && !runtime.closed? ? JSON.parse(runtime.metrics(1)) : nil
    end

    # The Prometheus text /metrics answers; nil while not running.
    def metrics
      runtime = @runtime
      runtime && !runtime.closed? ? runtime.metrics(0) : nil
    end

    # A core event (open, close, reject, error) as one logger line.
    def log_event(level, event, f)
      where = "#{f[:remote]}:#{f[:port]} #{f[:path]}"
      text = case event
             when "close"
               format("close %s code=%d duration=%.3fs in=%dB out=%dB", where, f[:code],
                      f[:duration], f[:bytes_in], f[:bytes_out])
             when "reject" then "reject #{where} status=#{f[:status]} #{f[:message]}"
             when "error" then "error #{where} #{f[:error]}: #{f[:message]}"
             else "#{event} #{where}"
             end
      severity = level >= 40 ? Logger::ERROR : level >= 30 ? Logger::WARN : Logger::INFO
      @logger&.add(severity, "wirecore: #{text}")
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
    # (frames per message, default 4096), message_timeout: (seconds a fragmented
    # message may take from first to last frame before a 1008 close; default 60;
    # false: never), compression: (:shared (default),
    # :dedicated or :off: permessage-deflate, see docs/compression.md),
    # compression_threshold: (bytes; shorter messages go out uncompressed;
    # default 1024), compression_window_bits: (9..15, dedicated mode),
    # allowed_origins:, subprotocols:, on_invalid: (:reply, :close, :ignore).
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
    # tls: { cert:, key:, password:, sni: } serves wss:// (see Wirecore::TLS);
    # then SIGHUP reloads the certificate files (in a lone process).
    # workers: N > 1 serves from N processes sharing the port under a
    # supervisor (this process): a worker that dies is restarted, SIGHUP
    # replaces them one at a time. Call it before starting threads.
    def run(host: "127.0.0.1", port: 8000, tls: nil, workers: 1, &block)
      return supervise(workers, host, port, tls, &block) if workers > 1

      runtime = @runtime = Runtime.new(self, host: host, port: port, tls: tls)
      yield runtime if block_given?
      reload = tls && Native.worker_index.negative? # workers: SIGHUP drains
      old_hup = trap_hup(runtime, tls) if reload
      runtime.run
      nil
    ensure
      Signal.trap("HUP", old_hup || "DEFAULT") if reload
    end

    # Serve from a background thread; returns [runtime, thread]. runtime.stop
    # shuts it down; join the thread after.
    def start(host: "127.0.0.1", port: 0, tls: nil)
      runtime = @runtime = Runtime.new(self, host: host, port: port, tls: tls)
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

    # Keep the last `history` publications of the topic `pattern`, or of
    # every topic starting with it when it ends in "*" ("room:*"), each for
    # at most `ttl` seconds (nil: no time limit; a topic's history is also
    # freed after ttl without publications). Publications on these topics
    # reach subscribers as {"topic", "offset", "data"}, and
    # ws.subscribe(topic, since: offset) recovers what a client missed
    # (docs/scaling.md). ConfigError for a bad pattern, history outside
    # 1..1,000,000, a ttl that is not positive, or a pattern set twice.
    def topic(pattern, history:, ttl: nil)
      check_topic(pattern)
      unless history.is_a?(Integer) && history.between?(1, 1_000_000)
        raise ConfigError, "history must be an Integer in 1..1000000, not #{history.inspect}"
      end
      unless ttl.nil? || (ttl.is_a?(Numeric) && ttl.positive? && ttl.finite?)
        raise ConfigError, "ttl must be a positive number of seconds or nil, not #{ttl.inspect}"
      end
      raise ConfigError, "#{pattern} has history already" if @histories.any? { |p, _, _| p == pattern }

      ttl_ms = ttl.nil? ? 0 : [1, (ttl * 1000).round].max
      @runtime&.topic_history(pattern, history, ttl_ms)
      @histories << [pattern, history, ttl_ms]
      self
    end

    # The history rules set with #topic: [pattern, history, ttl_ms] each.
    def histories = @histories.dup

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

    def trap_hup(runtime, tls)
      Signal.trap("HUP") do
        runtime.reload_tls(tls)
        @logger&.info("wirecore: TLS certificate reloaded")
      rescue Wirecore::Error => e
        @logger&.error("wirecore: TLS reload failed: #{e.message}")
      end
    end

    def check_topic(topic)
      raise TypeError, "topic must be a String, not #{topic.class}" unless topic.is_a?(String)
      raise ConfigError, "a topic is 1..256 bytes" unless topic.bytesize.between?(1, 256)

      true
    end

    def supervise(workers, host, port, tls, &block)
      raise ArgumentError, "workers need a fixed port (each worker would pick its own)" if port.zero?

      status = Native.supervise(workers, "wirecore") do |_index|
        # Ruby's own handlers again (the supervisor's were reset by the fork)
        %w[INT TERM].each { |sig| trap(sig, "DEFAULT") }
        run(host: host, port: port, tls: tls, &block)
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

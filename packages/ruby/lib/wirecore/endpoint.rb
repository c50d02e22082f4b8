# frozen_string_literal: true

module Wirecore
  # An endpoint as registered on an App: its route, style, serializer,
  # schemas and limits. Runtime turns it into a core endpoint.
  class Endpoint
    LIMIT_KEYS = %i[max_message_size idle_timeout pong_timeout max_backpressure
                    max_queued_messages send_timeout max_message_fragments message_timeout
                    allowed_origins subprotocols on_invalid
                    format_assert compression compression_threshold compression_window_bits
                    message_rate message_burst byte_rate byte_burst rate_limit_action].freeze
    # permessage-deflate modes, as the core numbers them (wire_compression)
    COMPRESSION = { shared: 0, off: 1, dedicated: 2 }.freeze
    RATE_ACTIONS = { drop: 0, close: 1 }.freeze
    NEVER_MS = 0xFFFF_FFFF

    attr_reader :path, :style, :codec, :block, :klass, :on_error, :logger

    def initialize(path, style:, codec:, block: nil, klass: nil, message_schemas: [],
                   response_schema: nil, on_error: nil, logger: nil, **limits)
      unknown = limits.keys - LIMIT_KEYS
      raise ArgumentError, "unknown endpoint option(s): #{unknown.join(', ')}" unless unknown.empty?
      raise ArgumentError, "path must start with '/'" unless path.to_s.start_with?("/")

      compression_mode(limits[:compression]) # refuses an unknown mode now

      @path = path.to_s
      @style = style
      @codec = codec
      @block = block
      @klass = klass
      @message_schemas = message_schemas.map { |s| schema_text(s) }
      @response_schema = response_schema && schema_text(response_schema)
      @on_error = on_error
      @logger = logger
      @limits = limits
      @receiver_methods = klass ? klass.receivers.map { |name, _| :"receive_#{name}" } : []
    end

    SESSION_CLASSES = { callback: :CallbackSession, typed: :TypedSession,
                        stream: :StreamSession, class: :ClassSession }.freeze

    def new_session(conn, request, runtime)
      Wirecore.const_get(SESSION_CLASSES.fetch(@style)).new(self, conn, request, runtime)
    end

    # The method a class endpoint runs for the schema at index (-1: none).
    def receiver_method(index)
      index >= 0 ? @receiver_methods.fetch(index) : :on_message
    end

    # The options Hash Native::Server#add_endpoint reads.
    def native_options
      l = @limits
      {
        codec: @codec,
        message_schemas: @message_schemas,
        response_schema: @response_schema,
        invalid_policy: l[:on_invalid],
        format_assert: l[:format_assert],
        max_message_size: l[:max_message_size],
        max_backpressure: l[:max_backpressure],
        max_queued_messages: l[:max_queued_messages],
        idle_timeout_ms: seconds_to_ms(l[:idle_timeout]),
        pong_timeout_ms: seconds_to_ms(l[:pong_timeout]),
        send_timeout_ms: seconds_to_ms(l[:send_timeout]),
        max_message_fragments: l[:max_message_fragments],
        compression: compression_mode(l[:compression]),
        compression_threshold: l[:compression_threshold],
        compression_window_bits: l[:compression_window_bits],
        message_timeout_ms: seconds_to_ms(l[:message_timeout]),
        subprotocols: l[:subprotocols]&.map(&:to_s),
        allowed_origins: l[:allowed_origins]&.map(&:to_s),
        message_rate: Endpoint.limit(:message_rate, l[:message_rate], 2**32),
        message_burst: Endpoint.limit(:message_burst, l[:message_burst], 2**32),
        byte_rate: Endpoint.limit(:byte_rate, l[:byte_rate], 2**63),
        byte_burst: Endpoint.limit(:byte_burst, l[:byte_burst], 2**63),
        rate_limit_action: rate_action(l.fetch(:rate_limit_action, :drop))
      }
    end

    # :shared (default), :dedicated or :off (strings too; true/false).
    def compression_mode(mode)
      return COMPRESSION[:shared] if mode.nil? || mode == true
      return COMPRESSION[:off] if mode == false

      COMPRESSION.fetch(mode.to_s.to_sym) do
        raise ArgumentError, "compression must be :shared, :dedicated or :off, not #{mode.inspect}"
      end
    end

    # A client limit (docs/security.md): nil, or an Integer from 0 (off) below bound.
    def self.limit(name, value, bound)
      return nil if value.nil?
      return value if value.is_a?(Integer) && value >= 0 && value < bound

      raise ConfigError, "#{name} must be a non-negative Integer, not #{value.inspect}"
    end

    def log_exception(exc, request)
      return unless @logger

      @logger.error("wirecore: unhandled #{exc.class} in #{request&.path || @path}: #{exc.message}\n" \
                    "#{(exc.backtrace || []).first(5).join("\n")}")
    end

    private

    def rate_action(action)
      RATE_ACTIONS.fetch(action.to_s.to_sym) do
        raise ConfigError, "rate_limit_action must be :drop or :close, not #{action.inspect}"
      end
    end

    def schema_text(schema)
      schema.is_a?(String) ? schema : Native.encode(schema, :json)
    end

    # Seconds (Numeric) to milliseconds; false/:never turns pings off.
    def seconds_to_ms(value)
      return nil if value.nil?
      return NEVER_MS if value == false || value == :never

      ms = (value * 1000).round
      raise ArgumentError, "timeouts must be positive" unless ms.positive?

      ms
    end
  end

  # The object the core's callbacks call (one per endpoint and runtime).
  # Each method forwards to the connection's session; see rb_server.c.
  class Handler
    def initialize(endpoint, runtime)
      @endpoint = endpoint
      @runtime = runtime
    end

    # Returns 0 to accept or the HTTP status to reject with.
    def _connect(conn, parts)
      session = @endpoint.new_session(conn, Request.new(parts), @runtime)
      session.connect
      conn.data = session
      @runtime.defer(session)
      0
    rescue Reject => e
      e.status
    rescue StandardError => e
      @endpoint.log_exception(e, nil)
      500
    end

    def _message(conn, kind, data, value, index)
      conn.data.message(kind, data, value, index)
    end

    def _close(conn, code, reason)
      conn.data&.closed(code, reason)
    end

    def _error(conn, error)
      session = conn&.data or return false
      session.error(error)
    end

    # The connection is writable again (see Session#flow).
    def _drain(conn)
      conn.data&.drained
    end
  end
end

# frozen_string_literal: true

module Wirecore
  # Base class of class-style endpoints. One instance serves one connection.
  #
  #   class Room < Wirecore::WebSocket
  #     path "/rooms/{room}"
  #     serializer :msgpack
  #     receive :message, MESSAGE_SCHEMA   # -> receive_message(data)
  #     rescue_from Wirecore::UnknownMessageError, with: :on_unknown
  #     def receive_message(data) = { ok: true }
  #   end
  #
  # The message schemas go to the core, whose dispatcher picks the first one
  # a message satisfies (one lookup when they share a `const` discriminator).
  class WebSocket
    class << self
      # The route pattern ("/rooms/{room}").
      def path(pattern = nil)
        @path = pattern.to_s if pattern
        @path || (superclass.respond_to?(:path) ? superclass.path : nil)
      end

      # :json (text frames, the default) or :msgpack (binary frames).
      def serializer(name = nil)
        if name
          raise ArgumentError, "serializer must be :json or :msgpack" unless %i[json msgpack].include?(name)

          @serializer = name
        end
        @serializer || (superclass.respond_to?(:serializer) ? superclass.serializer : :json)
      end

      # Declare a message type: messages matching schema (a Hash, or JSON
      # text) go to receive_<name>(data).
      def receive(name, schema)
        own_receivers << [name.to_sym, schema]
      end

      # Schema for the replies (checked by the core before sending).
      def response_schema(schema = nil)
        @response_schema = schema if schema
        @response_schema || (superclass.respond_to?(:response_schema) ? superclass.response_schema : nil)
      end

      # Endpoint limits, as for App#websocket (max_message_size:, ...).
      def options(**opts)
        (@options ||= {}).merge!(opts)
        inherited_options
      end

      # rescue_from ErrorClass, ..., with: :method (or a block taking the
      # error). The handler's return value is sent. Later declarations win.
      def rescue_from(*klasses, with: nil, &block)
        handler = with || block or raise ArgumentError, "rescue_from needs with: or a block"
        klasses.each { |k| own_rescue_handlers.unshift([k, handler]) }
      end

      def receivers
        parent = superclass.respond_to?(:receivers) ? superclass.receivers : []
        parent + own_receivers
      end

      def rescue_handler_for(error)
        klass = self
        while klass.respond_to?(:own_rescue_handlers, true)
          klass.__send__(:own_rescue_handlers).each do |k, handler|
            return handler if error.is_a?(k.is_a?(String) ? Object.const_get(k) : k)
          end
          klass = klass.superclass
        end
        nil
      end

      def inherited_options
        parent = superclass.respond_to?(:inherited_options) ? superclass.inherited_options : {}
        parent.merge(@options || {})
      end

      private

      def own_receivers = (@own_receivers ||= [])
      def own_rescue_handlers = (@own_rescue_handlers ||= [])
    end

    # The connection's handshake request.
    def request = @__session.request
    def params = request.params
    def query = request.query
    def headers = request.headers

    # Send obj with the endpoint's serializer (queued until the upgrade
    # when called from on_connect).
    def transmit(obj) = @__session.reply(obj)
    def close(code = 1000, reason = "") = @__session.close(code, reason)

    # Topics (see App#publish): subscribe / unsubscribe / topics.
    def subscribe(topic, since: nil) = @__session.conn.subscribe(topic, since)
    def unsubscribe(topic) = @__session.conn.unsubscribe(topic)
    def topics = @__session.conn.topics
    def __wirecore_conn = @__session.conn

    # Before the upgrade: raise Wirecore::Reject.new(status) to refuse.
    def on_connect(request); end
    # A message when the class declares no `receive` types.
    def on_message(_data) = nil
    def on_disconnect(code, reason); end

    private

    def __wirecore_attach(session)
      @__session = session
    end
  end
end

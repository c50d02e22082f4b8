# frozen_string_literal: true

module Wirecore
  # Base class of every error Wirecore raises. The extension defines the
  # class tree, one subclass per core error category, generated from the
  # core's list (Native.errors); this file adds the readers for the details
  # the core reports. The class names are the same in Python and Node.
  class Error < StandardError
    # The core's error code as a Symbol, e.g. :EVALIDATION (nil when the
    # error was raised in Ruby).
    attr_reader :code
    # Validation: JSON Pointer of the failing value ("" = the root).
    attr_reader :path
    # Validation: the failing keyword, e.g. "type" or "required".
    attr_reader :keyword
    # Validation: JSON Pointer into the schema.
    attr_reader :schema_path
    # Decoding: byte offset of the problem.
    attr_reader :offset
  end

  # The runtime itself failed (out of memory, an event loop error).
  class InternalError < Error; end
  # A bad argument or option, a schema that does not compile, a malformed
  # route pattern, an address the server cannot listen on.
  class ConfigError < Error; end
  # A message matched none of the endpoint's schemas.
  class UnknownMessageError < Error; end
  # A message failed its schema (or a reply failed the response schema).
  class ValidationError < Error; end
  # A message could not be decoded (bad JSON/MessagePack, wrong frame kind).
  class DeserializationError < Error; end
  # A value could not be encoded (no JSON form, invalid UTF-8, cycles).
  class SerializationError < Error; end
  # A send on a connection that has closed.
  class ConnectionClosedError < Error; end
  # The connection's send queue is over max_backpressure.
  class BackpressureError < Error; end
  # A message exceeded max_message_size.
  class MessageTooBigError < Error; end
  # The peer broke RFC 6455 (including invalid UTF-8 in a text frame).
  class ProtocolError < Error; end
  # An application handler failed.
  class HandlerError < Error; end

  # The names before the classes were unified per category: the same class.
  SchemaError = ConfigError
  RouteError = ConfigError
  ListenError = ConfigError

  # Raise from a connect hook to refuse the handshake with an HTTP status
  # (400..599) before the upgrade.
  class Reject < Error
    attr_reader :status

    def initialize(status = 403, message = nil)
      status = Integer(status)
      raise ArgumentError, "reject status must be 400..599, got #{status}" unless (400..599).cover?(status)

      @status = status
      super(message || "handshake rejected with #{status}")
    end
  end

  # The test client's handshake was refused; #status is the HTTP status.
  class HandshakeError < Error
    attr_reader :status, :body

    def initialize(status, body = "")
      @status = status
      @body = body
      super("handshake failed with HTTP #{status}")
    end
  end
end

# frozen_string_literal: true

module Wirecore
  # One WebSocket message as received (callback and stream styles).
  class WebSocketMessage
    TEXT = 1
    BINARY = 2

    attr_reader :kind, :data

    # kind: :text or :binary (or the core's 1/2); data: the payload String.
    def initialize(data, kind = nil)
      kind ||= data.encoding == Encoding::BINARY ? :binary : :text
      @kind = case kind
              when :text, TEXT then :text
              when :binary, BINARY then :binary
              else raise ArgumentError, "message kind must be :text or :binary"
              end
      @data = data
    end

    def self.text(str) = new(str.encode(Encoding::UTF_8), :text)
    def self.binary(str) = new(str.b, :binary)

    def text? = @kind == :text
    def binary? = @kind == :binary

    # The payload as a UTF-8 String.
    def as_text = text? ? @data : @data.dup.force_encoding(Encoding::UTF_8)
    # The payload's bytes (ASCII-8BIT).
    def as_binary = binary? ? @data : @data.b

    # The payload parsed as JSON by the core's decoder (Hash keys are
    # Strings). Raises Wirecore::DeserializationError.
    def as_json = Native.decode(@data, :json)
    # The payload parsed as MessagePack by the core.
    def as_msgpack = Native.decode(@data, :msgpack)

    def to_s = as_text
    def ==(other) = other.is_a?(WebSocketMessage) && other.kind == kind && other.data == data
    def inspect = "#<Wirecore::WebSocketMessage #{@kind} #{@data.bytesize} bytes>"
  end
end

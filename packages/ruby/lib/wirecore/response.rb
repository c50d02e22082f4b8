# frozen_string_literal: true

module Wirecore
  # What a callback-style endpoint block returns for a new connection: the
  # callables that handle its life.
  #   on_message: ->(msg) { reply }   msg is a WebSocketMessage; a non-nil
  #                                   reply is sent (see docs/ruby.md)
  #   on_connect: -> { }              after the upgrade; ->(ctx) { } gets the
  #                                   connection (send, subscribe, close, ...)
  #                                   and on_message: ->(msg, ctx) { } too
  #   on_close:   ->(code, reason) { }
  #   on_error:   ->(error) { reply } an exception from on_message or an
  #                                   error the core reports; its reply is sent
  class WebSocketResponse
    attr_reader :on_message, :on_connect, :on_close, :on_error

    def initialize(on_message: nil, on_connect: nil, on_close: nil, on_error: nil)
      @on_message = on_message
      @on_connect = on_connect
      @on_close = on_close
      @on_error = on_error
    end
  end
end

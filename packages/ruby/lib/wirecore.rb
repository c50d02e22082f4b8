# frozen_string_literal: true

# Wirecore: WebSocket endpoints served by a C core (libuv, wslay, JSON and
# MessagePack codecs, JSON Schema validation and dispatch). This file loads
# the extension and the Ruby API around it.
require "wirecore/version"
require "wirecore/wirecore_ext"
require "wirecore/errors"
require "wirecore/message"
require "wirecore/request"
require "wirecore/response"
require "wirecore/sessions"
require "wirecore/websocket"
require "wirecore/endpoint"
require "wirecore/tls"
require "wirecore/runtime"
require "wirecore/app"
require "wirecore/test_client"

module Wirecore
  # The C core's version ("MAJOR.MINOR.PATCH").
  def self.core_version = Native.version
end

# frozen_string_literal: true

# Wirecore: WebSocket endpoints served by a C core (libuv, wslay, JSON and
# MessagePack codecs, JSON Schema validation and dispatch). This file loads
# the extension and the Ruby API around it.
require "wirecore/version"
begin
  require "wirecore/wirecore_ext"
rescue LoadError => e
  # Present but not loadable: a prebuilt (x86_64-linux) extension on a machine it does not fit.
  raise unless File.exist?(File.join(__dir__, "wirecore", "wirecore_ext.so"))

  raise LoadError, "wirecore: its compiled extension does not load here (#{e.message}); the " \
                   "x86_64-linux gem needs glibc 2.34 or newer and the Ruby it was built for. " \
                   "Install the source gem instead (gem install wirecore --platform ruby), " \
                   "which compiles it; see docs/ruby.md"
end
require "wirecore/errors"
require "wirecore/message"
require "wirecore/request"
require "wirecore/response"
require "wirecore/sessions"
require "wirecore/websocket"
require "wirecore/endpoint"
require "wirecore/runtime"
require "wirecore/app"
require "wirecore/test_client"

module Wirecore
  # The C core's version ("MAJOR.MINOR.PATCH").
  def self.core_version = Native.version
end

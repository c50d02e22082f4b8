# frozen_string_literal: true

require_relative "lib/wirecore/version"

Gem::Specification.new do |spec|
  spec.name = "wirecore"
  spec.version = Wirecore::VERSION
  spec.summary = "WebSocket server runtime: a C core (libuv, wslay, JSON Schema) behind a Ruby API"
  spec.description = <<~DESC
    Wirecore serves WebSocket endpoints from one C core: the HTTP upgrade, RFC 6455 framing,
    JSON and MessagePack decoding, JSON Schema 2020-12 validation and message dispatch all run
    in C; Ruby gets callback, typed, class-based and streaming endpoints.
  DESC
  spec.authors = ["Wirecore contributors"]
  spec.license = "MIT"
  spec.homepage = "https://github.com/wirecore/wirecore"
  spec.required_ruby_version = ">= 3.0"

  # The gem carries the core's C sources (copied by `rake vendor`), so that
  # `gem install` compiles everything on the target machine.
  spec.files = Dir["lib/**/*.rb", "ext/wirecore/extconf.rb",
                   "ext/wirecore/vendor/**/*.{c,h}", "examples/*.rb", "README.md"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/wirecore/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
end

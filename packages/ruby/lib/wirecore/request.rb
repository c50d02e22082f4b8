# frozen_string_literal: true

module Wirecore
  # The handshake request of a connection: path, parameters, query, headers.
  class Request
    # The percent-decoded path and the raw request target.
    attr_reader :path, :target
    # Path parameters by name ({"room" => "lobby"}).
    attr_reader :params
    # Query parameters in order, repeated keys kept: [["k", "v"], ...].
    attr_reader :query_pairs
    # Headers in order as sent: [["Host", "..."], ...].
    attr_reader :header_pairs
    attr_reader :remote_addr, :remote_port
    # The negotiated subprotocol, or nil.
    attr_reader :subprotocol

    # parts: what the extension hands over (see rb_server.c).
    def initialize(parts)
      @path, @target, @params, @query_pairs, @header_pairs,
        @remote_addr, @remote_port, @subprotocol = parts
      @params.freeze
    end

    # Query parameters as a Hash; the first value of a repeated key wins.
    def query
      @query ||= @query_pairs.each_with_object({}) { |(k, v), h| h[k] = v unless h.key?(k) }.freeze
    end

    # Headers as a Hash with lower-case names; repeated headers are joined
    # with ", " as RFC 9110 allows.
    def headers
      @headers ||= @header_pairs.each_with_object({}) do |(k, v), h|
        key = k.downcase
        h[key] = h.key?(key) ? "#{h[key]}, #{v}" : v
      end.freeze
    end

    # One header, case-insensitively.
    def header(name) = headers[name.to_s.downcase]
    def [](name) = header(name)

    def inspect = "#<Wirecore::Request #{@target}>"
  end
end

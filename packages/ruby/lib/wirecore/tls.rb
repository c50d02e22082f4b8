# frozen_string_literal: true

module Wirecore
  # TLS (wss://) options for App#run / App#start: tls: { cert:, key:,
  # password:, sni: { "name" => { cert:, key: } }, ca: }. cert, key and ca
  # are file paths, or PEM text (a String containing "-----BEGIN"); key
  # defaults to cert (one combined file). With ca:, clients must present a
  # certificate one of those CAs signed. TLS itself runs in the core (OpenSSL).
  module TLS
    KEYS = %i[cert key password sni ca].freeze

    # The native rows: [[server_name, cert, key, password, pem?], ...].
    def self.rows(tls)
      raise ArgumentError, "tls: must be a Hash with cert: and key:" unless tls.is_a?(Hash)

      [row(nil, tls, "tls")] + (tls[:sni] || {}).map { |name, t| row(name.to_s, t, "tls[:sni][#{name}]") }
    end

    # The client CAs for the native side: nil, or [ca, pem?].
    def self.ca(tls)
      ca = tls[:ca] or return nil
      raise ArgumentError, "tls: ca: must be a String (a path or PEM text)" unless ca.is_a?(String)

      [ca, ca.include?("-----BEGIN")]
    end

    def self.row(name, t, where)
      raise ArgumentError, "#{where} must be a Hash with cert: and key:" unless t.is_a?(Hash)

      unknown = t.keys - (name.nil? ? KEYS : KEYS - [:ca]) # ca: is the server's, not per name
      raise ArgumentError, "unknown #{where} option(s): #{unknown.join(', ')}" unless unknown.empty?
      cert = t[:cert] or raise ArgumentError, "#{where} needs cert:"
      key = t[:key] || cert
      pem = cert.to_s.include?("-----BEGIN")
      if pem != key.to_s.include?("-----BEGIN")
        raise ArgumentError, "#{where}: cert: and key: must both be paths or both be PEM text"
      end

      [name, cert.to_s, key.to_s, t[:password]&.to_s, pem]
    end
    private_class_method :row
  end
end

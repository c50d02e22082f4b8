# frozen_string_literal: true

# wss:// from the Ruby package: app.start/run(tls: { cert:, key: }) with a
# throwaway CA made by the `openssl` command; the client is the `websocket`
# gem's handshake and frames over an OpenSSL::SSL::SSLSocket.
require_relative "test_helper"
require "openssl"
require "tmpdir"

class TestTLS < Minitest::Test
  include ServerHelpers

  def self.pki
    @pki ||= begin
      dir = Dir.mktmpdir("wire-tls-")
      Minitest.after_run { FileUtils.rm_rf(dir) }
      ec = %w[-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes]
      sh = lambda do |*args|
        system("openssl", *args, chdir: dir, out: File::NULL, err: File::NULL) or raise "openssl #{args.first} failed"
      end
      sh.call("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=TestCA")
      %w[localhost other.test].each do |n|
        sh.call("req", *ec, "-keyout", "#{n}.key", "-out", "#{n}.csr", "-subj", "/CN=#{n}")
        File.write(File.join(dir, "#{n}.ext"), "subjectAltName=DNS:#{n}\n")
        sh.call("x509", "-req", "-in", "#{n}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "#{n}.pem", "-days", "2", "-extfile", "#{n}.ext")
      end
      sh.call("pkey", "-in", "localhost.key", "-aes256", "-passout", "pass:secret", "-out", "localhost.enc")
      sh.call("req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=a client")
      File.write(File.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n")
      sh.call("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
              "-out", "client.pem", "-days", "2", "-extfile", "client.ext")
      dir
    end
  end

  def f(name) = File.join(self.class.pki, name)

  def echo_app
    app = Wirecore::App.new(logger: QUIET)
    app.websocket("/echo") { Wirecore::WebSocketResponse.new(on_message: ->(m) { m }) }
    app
  end

  # TLS to 127.0.0.1:port verified against the test CA, then the gem's
  # WebSocket handshake over it. Returns [ssl, incoming, handshake].
  def wss(port, host: "localhost", min: nil, max: nil, client: nil)
    ctx = OpenSSL::SSL::SSLContext.new
    ctx.ca_file = f("ca.pem")
    ctx.verify_mode = OpenSSL::SSL::VERIFY_PEER
    if client
      ctx.cert = OpenSSL::X509::Certificate.new(File.read(f("#{client}.pem")))
      ctx.key = OpenSSL::PKey.read(File.read(f("#{client}.key")))
    end
    ctx.min_version = min if min
    ctx.max_version = max if max
    ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), ctx)
    ssl.hostname = host
    ssl.sync_close = true
    Timeout.timeout(5) { ssl.connect }
    hs = WebSocket::Handshake::Client.new(url: "wss://#{host}:#{port}/echo")
    ssl.write(hs.to_s)
    Timeout.timeout(5) { hs << ssl.readpartial(4096) until hs.finished? }
    assert hs.valid?, "handshake refused"
    [ssl, WebSocket::Frame::Incoming::Client.new(version: hs.version), hs]
  end

  def echo(ssl, incoming, hs, text)
    ssl.write(WebSocket::Frame::Outgoing::Client.new(version: hs.version, data: text, type: :text).to_s)
    Timeout.timeout(5) do
      loop do
        frame = incoming.next
        return frame.data if frame

        incoming << ssl.readpartial(65_536)
      end
    end
  end

  def test_wss_echo_with_files
    runtime, thread = echo_app.start(tls: { cert: f("localhost.pem"), key: f("localhost.key") })
    assert runtime.tls?
    ssl, inc, hs = wss(runtime.port)
    assert_includes %w[TLSv1.2 TLSv1.3], ssl.ssl_version
    assert_equal '{"a":1}', echo(ssl, inc, hs, '{"a":1}')
    big = JSON.generate("x" * 300_000)
    assert_equal big, echo(ssl, inc, hs, big)
    ssl.close
  ensure
    runtime&.stop
    thread&.join(10)
  end

  def test_pem_text_encrypted_key_sni_and_reload
    tls = { cert: File.read(f("localhost.pem")), key: File.read(f("localhost.enc")), password: "secret",
            sni: { "other.test" => { cert: f("other.test.pem"), key: f("other.test.key") } } }
    serving_tls(tls) do |port, runtime|
      ssl, = wss(port)
      assert_equal "localhost", ssl.peer_cert.subject.to_a.assoc("CN")[1]
      ssl.close
      ssl, = wss(port, host: "other.test")
      assert_equal "other.test", ssl.peer_cert.subject.to_a.assoc("CN")[1]
      ssl.close
      runtime.reload_tls(cert: f("other.test.pem"), key: f("other.test.key"))
      ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port))
      ssl.sync_close = true
      Timeout.timeout(5) { ssl.connect }
      assert_equal "other.test", ssl.peer_cert.subject.to_a.assoc("CN")[1]
      ssl.close
      err = assert_raises(Wirecore::ConfigError) do
        runtime.reload_tls(cert: f("localhost.pem"), key: f("other.test.key"))
      end
      assert_match(/does not match/, err.message)
    end
  end

  def test_ca_requires_a_client_certificate
    [f("ca.pem"), File.read(f("ca.pem"))].each do |ca| # a path, then PEM text
      runtime, thread = echo_app.start(tls: { cert: f("localhost.pem"), key: f("localhost.key"), ca: ca })
      ssl, inc, hs = wss(runtime.port, client: "client")
      assert_equal "signed", echo(ssl, inc, hs, "signed")
      ssl.close
      # without a certificate the server ends the connection before any upgrade
      assert_raises(OpenSSL::SSL::SSLError, EOFError, Errno::ECONNRESET) do
        ssl, = wss(runtime.port, max: OpenSSL::SSL::TLS1_2_VERSION)
        ssl.close
      end
    ensure
      runtime&.stop
      thread&.join(10)
    end
  end

  def test_tls11_is_refused
    serving_tls(cert: f("localhost.pem"), key: f("localhost.key")) do |port, _|
      ctx = OpenSSL::SSL::SSLContext.new
      ctx.security_level = 0
      ctx.ciphers = "DEFAULT:@SECLEVEL=0"
      ctx.min_version = OpenSSL::SSL::TLS1_VERSION
      ctx.max_version = OpenSSL::SSL::TLS1_1_VERSION
      ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), ctx)
      err = assert_raises(OpenSSL::SSL::SSLError) { Timeout.timeout(5) { ssl.connect } }
      assert_match(/version/i, err.message)
      ssl.close
    end
  end

  def test_bad_options_are_clear
    assert_raises(ArgumentError) { echo_app.start(tls: { key: f("localhost.key") }) }
    err = assert_raises(Wirecore::ConfigError) do
      echo_app.start(tls: { cert: f("localhost.pem"), key: f("localhost.enc"), password: "nope" })
    end
    assert_match(/wrong password/, err.message)
    err = assert_raises(Wirecore::ConfigError) do
      echo_app.start(tls: { cert: f("localhost.pem"), key: f("localhost.key"), ca: "-----BEGIN nothing" })
    end
    assert_match(/cannot load CA/, err.message)
    assert_raises(ArgumentError) { echo_app.start(tls: { cert: f("localhost.pem"), key: f("localhost.key"), ca: 5 }) }
    assert_raises(ArgumentError) do
      echo_app.start(tls: { cert: f("localhost.pem"), sni: { "x" => { cert: f("other.test.pem"), ca: "y" } } })
    end
  end

  private

  def serving_tls(tls)
    runtime, thread = echo_app.start(tls: tls)
    yield runtime.port, runtime
  ensure
    runtime&.stop
    thread&.join(10)
  end
end

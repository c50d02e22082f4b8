# frozen_string_literal: true

require "base64"
require "digest/sha1"
require "securerandom"
require "socket"

module Wirecore
  # A WebSocket client for tests (App#test_client). It speaks RFC 6455 over a
  # real TCP socket: masked frames, fragments reassembled, pings answered.
  class TestClient
    attr_reader :host, :port

    def initialize(host, port, timeout: 5)
      @host = host
      @port = port
      @timeout = timeout
    end

    # Connect to path. With a block: yield the TestWebSocket, close it after,
    # return the block's value. Without: return the open TestWebSocket.
    # Raises HandshakeError (with #status) when the server refuses.
    def websocket(path, headers: {}, subprotocols: [], origin: nil)
      ws = TestWebSocket.connect(@host, @port, path, headers: headers, subprotocols: subprotocols,
                                                     origin: origin, timeout: @timeout)
      return ws unless block_given?

      begin
        yield ws
      ensure
        ws.close
      end
    end
  end

  # One client connection of the TestClient.
  class TestWebSocket
    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    OP_CONT = 0
    OP_TEXT = 1
    OP_BINARY = 2
    OP_CLOSE = 8
    OP_PING = 9
    OP_PONG = 10

    attr_reader :status, :response_headers, :subprotocol, :close_code, :close_reason

    def self.connect(host, port, path, headers: {}, subprotocols: [], origin: nil, timeout: 5)
      sock = Socket.tcp(host, port, connect_timeout: timeout)
      sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      new(sock, timeout).tap do |ws|
        ws.__send__(:handshake, "#{host}:#{port}", path, headers, subprotocols, origin)
      end
    rescue StandardError
      sock&.close
      raise
    end

    def initialize(sock, timeout)
      @sock = sock
      @timeout = timeout
      @buf = +"".b
      @closed = false
    end

    def send_text(str) = write_frame(OP_TEXT, str.to_s.encode(Encoding::UTF_8).b)
    def send_binary(str) = write_frame(OP_BINARY, str.to_s.b)
    def send_json(obj = nil, **kw) = send_text(Native.encode(obj.nil? ? kw : obj, :json))
    def send_msgpack(obj = nil, **kw) = send_binary(Native.encode(obj.nil? ? kw : obj, :msgpack))
    def ping(payload = "") = write_frame(OP_PING, payload.b)

    # Send a WebSocketMessage (its kind) or a String (text).
    def send(msg)
      msg.is_a?(WebSocketMessage) && msg.binary? ? send_binary(msg.data) : send_text(msg.to_s)
    end

    # The next data message as a WebSocketMessage. Raises
    # ConnectionClosedError when the server closes (see #close_code), and
    # Timeout-like Wirecore::Error after the client's timeout.
    def receive(timeout: @timeout)
      deadline = now + timeout
      message = nil
      kind = nil
      loop do
        fin, opcode, payload = read_frame(deadline)
        case opcode
        when OP_PING then write_frame(OP_PONG, payload)
        when OP_PONG then nil
        when OP_CLOSE then return on_close_frame(payload)
        when OP_TEXT, OP_BINARY
          kind = opcode
          message = payload
        when OP_CONT
          raise ProtocolError, "continuation without a start" unless message

          message << payload
        end
        next unless fin && message

        return WebSocketMessage.new(kind == OP_TEXT ? message.force_encoding(Encoding::UTF_8) : message,
                                    kind == OP_TEXT ? :text : :binary)
      end
    end

    def receive_text(**kw) = receive(**kw).as_text
    def receive_bytes(**kw) = receive(**kw).as_binary
    def receive_json(**kw) = receive(**kw).as_json
    def receive_msgpack(**kw) = receive(**kw).as_msgpack

    # Wait for the server to close; returns the close code.
    def wait_closed(timeout: @timeout)
      deadline = now + timeout
      loop do
        receive(timeout: [deadline - now, 0.001].max)
      end
    rescue ConnectionClosedError
      @close_code
    end

    # Send a close frame and wait (briefly) for the server's; idempotent.
    def close(code = 1000, reason = "")
      return if @sock.closed?

      unless @closed
        begin
          write_frame(OP_CLOSE, [code].pack("n") + reason.b)
          wait_closed(timeout: 2)
        rescue IOError, SystemCallError, Error
          nil
        end
      end
      @sock.close
    end

    def closed? = @closed

    private

    def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    def handshake(host, path, headers, subprotocols, origin)
      key = Base64.strict_encode64(SecureRandom.random_bytes(16))
      lines = ["GET #{path} HTTP/1.1", "Host: #{host}", "Upgrade: websocket", "Connection: Upgrade",
               "Sec-WebSocket-Key: #{key}", "Sec-WebSocket-Version: 13"]
      lines << "Origin: #{origin}" if origin
      lines << "Sec-WebSocket-Protocol: #{subprotocols.join(', ')}" unless subprotocols.empty?
      headers.each { |k, v| lines << "#{k}: #{v}" }
      @sock.write("#{lines.join("\r\n")}\r\n\r\n")
      head = read_head(now + @timeout)
      status_line, *header_lines = head.split("\r\n")
      @status = status_line[/\AHTTP\/1\.1 (\d{3})/, 1].to_i
      @response_headers = header_lines.to_h { |l| k, v = l.split(":", 2); [k.strip.downcase, v.to_s.strip] }
      raise HandshakeError.new(@status, @buf.dup) unless @status == 101

      expected = Base64.strict_encode64(Digest::SHA1.digest(key + GUID))
      raise ProtocolError, "bad Sec-WebSocket-Accept" unless @response_headers["sec-websocket-accept"] == expected

      @subprotocol = @response_headers["sec-websocket-protocol"]
    end

    def read_head(deadline)
      until (i = @buf.index("\r\n\r\n"))
        fill(deadline)
      end
      head = @buf.slice!(0, i + 4)
      head.force_encoding(Encoding::UTF_8)[0..-5]
    end

    def fill(deadline)
      chunk = @sock.read_nonblock(65_536, exception: false)
      case chunk
      when :wait_readable
        left = deadline - now
        raise Error, "timed out waiting for the server" if left <= 0 || !@sock.wait_readable(left)
      when nil
        @closed = true
        @close_code ||= 1006
        raise ConnectionClosedError, "server closed the TCP connection"
      else
        @buf << chunk
      end
    end

    def take(n, deadline)
      fill(deadline) while @buf.bytesize < n
      @buf.slice!(0, n)
    end

    def read_frame(deadline)
      b0, b1 = take(2, deadline).unpack("CC")
      len = b1 & 0x7f
      len = take(2, deadline).unpack1("n") if len == 126
      len = take(8, deadline).unpack1("Q>") if len == 127
      raise ProtocolError, "server frames must not be masked" if b1 & 0x80 != 0

      [b0 & 0x80 != 0, b0 & 0x0f, take(len, deadline)]
    end

    def on_close_frame(payload)
      @close_code = payload.bytesize >= 2 ? payload.unpack1("n") : 1005
      @close_reason = payload.bytesize > 2 ? payload.byteslice(2..).force_encoding(Encoding::UTF_8) : ""
      unless @closed
        @closed = true
        begin
          write_frame(OP_CLOSE, payload.byteslice(0, 2) || "".b)
        rescue IOError, SystemCallError
          nil
        end
      end
      raise ConnectionClosedError, "server closed the connection with #{@close_code}"
    end

    def write_frame(opcode, payload)
      raise ConnectionClosedError, "connection is closed" if @sock.closed?

      mask = SecureRandom.random_bytes(4)
      len = payload.bytesize
      head = [0x80 | opcode].pack("C")
      head << if len < 126 then [0x80 | len].pack("C")
              elsif len < 65_536 then [0x80 | 126, len].pack("Cn")
              else [0x80 | 127, len].pack("CQ>")
              end
      @sock.write(head << mask << xor(payload, mask))
      nil
    end

    def xor(payload, mask)
      return payload if payload.empty?

      m = mask.unpack("C4")
      # Pack-and-xor 4 bytes at a time is fast enough for test traffic.
      words = payload.unpack("C*")
      words.each_index { |i| words[i] ^= m[i & 3] }
      words.pack("C*")
    end
  end
end

# frozen_string_literal: true

require_relative "test_helper"

# Value conversion through the core's codecs (Native.encode / .decode).
class TestValues < Minitest::Test
  N = Wirecore::Native

  def test_round_trips_every_json_type
    obj = { "n" => nil, "t" => true, "f" => false, "i" => -42, "big" => 2**63 + 5,
            "d" => 1.5, "s" => "héllo", "a" => [1, [2, { "x" => [] }]], "o" => {} }
    assert_equal obj, N.decode(N.encode(obj, :json), :json)
  end

  def test_json_text_is_compact_utf8
    out = N.encode({ a: [1, "é"] }, :json)
    assert_equal '{"a":[1,"é"]}', out
    assert_equal Encoding::UTF_8, out.encoding
  end

  def test_symbols_become_strings
    assert_equal({ "k" => "v" }, N.decode(N.encode({ k: :v }, :json), :json))
  end

  def test_msgpack_keeps_binary_strings_binary
    obj = { "bin" => "\x00\xFF".b, "str" => "text" }
    back = N.decode(N.encode(obj, :msgpack), :msgpack)
    assert_equal obj, back
    assert_equal Encoding::BINARY, back["bin"].encoding
    assert_equal Encoding::UTF_8, back["str"].encoding
    assert_equal Encoding::BINARY, N.encode(obj, :msgpack).encoding
  end

  def test_integers_at_the_int64_and_uint64_edges
    [2**63 - 1, -2**63, 2**64 - 1, 0].each do |i|
      assert_equal i, N.decode(N.encode([i], :json), :json)[0]
      assert_equal i, N.decode(N.encode([i], :msgpack), :msgpack)[0]
    end
  end

  def test_integers_beyond_uint64_become_floats
    assert_in_delta 2.0**70, N.decode(N.encode([2**70], :json), :json)[0], 1e6
  end

  def test_objects_with_to_h_are_serialized
    point = Struct.new(:x, :y).new(1, 2)
    assert_equal({ "x" => 1, "y" => 2 }, N.decode(N.encode(point, :json), :json))
  end

  def test_unserializable_object_raises_serialization_error
    err = assert_raises(Wirecore::SerializationError) { N.encode({ a: Object.new }, :json) }
    assert_equal :ESERIALIZE, err.code
  end

  def test_cyclic_structure_raises_serialization_error
    a = []
    a << a
    assert_raises(Wirecore::SerializationError) { N.encode(a, :json) }
  end

  def test_invalid_utf8_string_raises_serialization_error
    assert_raises(Wirecore::SerializationError) { N.encode(["\xFF".dup.force_encoding("UTF-8")], :json) }
  end

  def test_nan_cannot_be_json
    assert_raises(Wirecore::SerializationError) { N.encode([Float::NAN], :json) }
  end

  def test_binary_cannot_be_json
    assert_raises(Wirecore::SerializationError) { N.encode(["\xFF".b], :json) }
  end

  def test_bad_json_raises_deserialization_error_with_offset
    err = assert_raises(Wirecore::DeserializationError) { N.decode('{"a": tru}', :json) }
    assert_equal :EDESERIALIZE, err.code
    assert_kind_of Integer, err.offset
  end

  def test_duplicate_keys_last_one_wins
    assert_equal({ "a" => 2 }, N.decode('{"a":1,"a":2}', :json))
  end

  def test_unknown_serializer_is_an_argument_error
    assert_raises(ArgumentError) { N.encode(1, :yaml) }
  end

  def test_message_helpers
    msg = Wirecore::WebSocketMessage.new('{"a":1}', :text)
    assert msg.text?
    refute msg.binary?
    assert_equal({ "a" => 1 }, msg.as_json)
    assert_equal Encoding::BINARY, msg.as_binary.encoding
    bin = Wirecore::WebSocketMessage.binary("\x01\x02")
    assert bin.binary?
    assert_equal "\x01\x02".b, bin.as_binary
  end

  def test_reject_checks_its_status
    assert_equal 401, Wirecore::Reject.new(401).status
    assert_raises(ArgumentError) { Wirecore::Reject.new(200) }
  end

  def test_core_version
    assert_match(/\A\d+\.\d+\.\d+\z/, Wirecore.core_version)
  end
end

# frozen_string_literal: true

# Does the core on this checkout have its message pipeline (decode, schema
# validation, dispatch, encoding replies)? The connection engine and the
# pipeline land on main separately; until both are there, tests that need the
# pipeline skip with a clear reason instead of failing. Run directly, this
# prints "yes" or "no" (scripts/test.d/40-ruby.sh uses it for the examples).
unless ENV["WIRECORE_USE_INSTALLED"] == "1"
  $LOAD_PATH.unshift(File.expand_path("../../packages/ruby/lib", __dir__))
end
require "wirecore"

module CoreProbe
  def self.pipeline?
    return @pipeline unless @pipeline.nil?

    app = Wirecore::App.new(logger: nil)
    app.websocket("/probe", message_schema: { "type" => "object" }) { |m, _| m }
    @pipeline = app.test_client(timeout: 2) do |c|
      c.websocket("/probe") do |ws|
        ws.send_json(a: 1)
        ws.receive_json == { "a" => 1 }
      end
    end
  rescue StandardError
    @pipeline = false
  end
end

puts(CoreProbe.pipeline? ? "yes" : "no") if $PROGRAM_NAME == __FILE__

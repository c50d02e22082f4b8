# frozen_string_literal: true

module Wirecore
  VERSION = "0.2.0"
end

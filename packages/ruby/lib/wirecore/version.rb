# frozen_string_literal: true

module Wirecore
  VERSION = "0.1.0"
end

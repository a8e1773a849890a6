# frozen_string_literal: true

Gem::Specification.new do |s|
  s.name = "exona"
  s.version = "0.1.0"
  s.summary = "Ruby binding of libexona, the client of the Exona AI-risk scanning API"
  s.authors = ["libexona developers"]
  s.license = "MIT"
  s.files = ["lib/exona.rb", "README.md"]
  s.required_ruby_version = ">= 3.1"
  s.add_dependency "ffi", ">= 1.15"
end

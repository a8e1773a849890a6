# frozen_string_literal: true

Gem::Specification.new do |s|
  s.name = "exona"
  s.version = "0.1.0"
  s.summary = "Ruby binding of libexona, the client of the Exona AI-risk scanning API"
  s.description = "Scan a company with the Exona AI-risk scanning API from Ruby: one call that " \
                  "waits out rate limits and flaky networks, through the libexona C library."
  s.authors = ["libexona developers"]
  s.homepage = "https://platform.exonalab.com"
  # As the library's Cargo.toml: MIT OR Apache-2.0.
  s.licenses = ["MIT", "Apache-2.0"]
  s.files = ["lib/exona.rb", "README.md"]
  # `make dist` puts libexona beside the Ruby code (lib/exona/libexona.so): the gem then
  # carries it, for this platform, and loads it with no PKG_CONFIG_PATH or LD_LIBRARY_PATH.
  bundled = "lib/exona/libexona.so"
  if File.exist?(File.join(__dir__, bundled))
    s.files += [bundled]
    s.platform = Gem::Platform.local
  end
  s.required_ruby_version = ">= 3.1"
  s.add_dependency "ffi", "~> 1.15"
  s.metadata = { "rubygems_mfa_required" => "true" }
end

# frozen_string_literal: true

# Scans one company and prints its risk assessment.
#   EXONA_API_KEY=... EXONA_BASE_URL=... ruby -Ilib examples/scan.rb "Acme AI Ltd" https://acme.ai

require_relative "../lib/exona"

abort "usage: scan.rb COMPANY_NAME COMPANY_WEBSITE" unless ARGV.size == 2

client = Exona::Client.new # EXONA_API_KEY, EXONA_BASE_URL
begin
  r = client.scan_and_wait(ARGV[0], ARGV[1], max_age_days: 30, timeout: 300)
  puts "scan #{r.scan_id}#{' (cached)' if r.cached?}"
  puts "overall risk: #{r.overall_risk_level}"
  %w[ai_intensity autonomy domain_risk blast_radius data_content_ip_risk control_governance].each do |dim|
    d = r.dig("result", "risk_assessment", dim)
    puts format("  %-22s %d  %s", dim, d["score"], d["label"])
  end
rescue Exona::Error => e
  warn "#{e.message} (request id #{e.request_id || '-'})"
  warn "resume later with client.wait(#{e.scan_id.inspect})" if e.scan_id
  exit 1
end

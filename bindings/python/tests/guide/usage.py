# The guide's usage snippet: one company, scanned and read.
import os

from guide_client import ExonaClient

client = ExonaClient(
    api_key=os.environ["EXONA_API_KEY"],
    base_url=os.environ.get("EXONA_BASE_URL", "https://platform.exonalab.com/api/v1"),
)

try:
    result = client.scan_and_wait("Acme AI Ltd", "https://acme.ai", timeout=300)
except TimeoutError:
    print("Scan still processing; check back later")
except RuntimeError as e:
    print(f"Scan failed: {e}")
else:
    risk = result["risk_assessment"]
    print(f"Overall risk: {risk['overall_risk_level']}")
    for dimension in ["ai_intensity", "autonomy", "domain_risk", "blast_radius",
                      "data_content_ip_risk", "control_governance"]:
        print(f"  {dimension}: {risk[dimension]['score']}")
    print(f"Regulatory exposure: {risk['regulatory_exposure']}")

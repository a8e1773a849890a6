# The guide's parallel example: a portfolio scanned by five threads.
import os
from concurrent.futures import ThreadPoolExecutor, as_completed

from guide_client import ExonaClient

client = ExonaClient(
    api_key=os.environ["EXONA_API_KEY"],
    base_url=os.environ.get("EXONA_BASE_URL", "https://platform.exonalab.com/api/v1"),
)

portfolio = [
    ("Acme AI Ltd", "https://acme.ai"),
    ("Brightpath Lending", "https://brightpath-lending.example"),
    ("Cobalt Health", "https://cobalt-health.example"),
    ("Dunmore Insurance", "https://dunmore-insurance.example"),
    ("Evergreen Analytics", "https://evergreen-analytics.example"),
    ("Fjord Robotics", "https://fjord-robotics.example"),
    ("Granite Legal AI", "https://granite-legal.example"),
    ("Harbor Credit", "https://harbor-credit.example"),
    ("Ionic Media", "https://ionic-media.example"),
    ("Juniper HR Tech", "https://juniper-hr.example"),
    ("Kestrel Logistics", "https://kestrel-logistics.example"),
    ("Lumen Diagnostics", "https://lumen-diagnostics.example"),
    ("Meridian Payments", "https://meridian-payments.example"),
    ("Northwind Energy", "https://northwind-energy.example"),
    ("Orchid Retail", "https://orchid-retail.example"),
    ("Pinnacle Tutoring", "https://pinnacle-tutoring.example"),
    ("Quartz Security", "https://quartz-security.example"),
    ("Redwood Claims", "https://redwood-claims.example"),
    ("Summit Travel", "https://summit-travel.example"),
    ("Tidal Voice", "https://tidal-voice.example"),
]


def scan_company(name, website):
    try:
        result = client.scan_and_wait(name, website, max_age_days=30)
        return name, result["risk_assessment"]["overall_risk_level"], None
    except Exception as e:
        return name, None, str(e)


with ThreadPoolExecutor(max_workers=5) as executor:
    futures = [executor.submit(scan_company, name, website) for name, website in portfolio]
    for future in as_completed(futures):
        name, level, error = future.result()
        if error:
            print(f"{name}: FAILED {error}")
        else:
            print(f"{name}: {level}")

"""The API guide's client ("Polling for Results"), as the guide writes it: requests, a sleep
loop, one key per client and nothing shared between threads or processes. Kept here to run
the guide's snippets against it and to benchmark it beside libexona (bench_parallel.py); it
is not part of the package."""

import time

import requests


class ExonaClient:
    def __init__(self, api_key, base_url="https://platform.exonalab.com/api/v1"):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        })

    def create_scan(self, company_name, company_website, **kwargs):
        payload = {"company_name": company_name, "company_website": company_website}
        if "questionnaire_data" in kwargs:
            payload["questionnaire"] = kwargs.pop("questionnaire_data")
        payload.update(kwargs)
        response = self.session.post(f"{self.base_url}/scans", json=payload)
        response.raise_for_status()
        return response.json()

    def get_scan(self, scan_id):
        return self._get(scan_id).json()

    def _get(self, scan_id):
        response = self.session.get(f"{self.base_url}/scans/{scan_id}")
        response.raise_for_status()
        return response

    def scan_and_wait(self, company_name, company_website, poll_interval=10, timeout=300, **kwargs):
        scan = self.create_scan(company_name, company_website, **kwargs)
        if scan["status"] == "completed":
            return scan["result"]
        deadline = time.time() + timeout
        wait = poll_interval
        while time.time() < deadline:
            time.sleep(wait)
            response = self._get(scan["id"])
            scan = response.json()
            if scan["status"] == "completed":
                return scan["result"]
            if scan["status"] == "failed":
                raise RuntimeError(f"Scan failed: {scan.get('error')}")
            # Honour Retry-After when the API sends it (the guide's polling advice).
            wait = float(response.headers.get("Retry-After", poll_interval))
        raise TimeoutError(f"Scan {scan['id']} did not complete within {timeout} seconds")

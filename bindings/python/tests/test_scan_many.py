"""scan_many: the guide's parallel example in one call, over libexona's batch."""

from __future__ import annotations

import pytest

import exona


def test_every_company_ends_once_with_its_outcome(client):
    companies = [(f"Co {i}", "https://gone.invalid" if i == 3 else f"https://py-many-{i}.example")
                 for i in range(20)]
    statuses = []
    outcomes = list(client.scan_many(companies, on_progress=statuses.append))
    assert sorted(o.index for o in outcomes) == list(range(20))
    failed = [o for o in outcomes if not o.ok]
    assert [o.index for o in failed] == [3]
    assert isinstance(failed[0].error, exona.ScanFailedError) and failed[0].error.scan_id
    ok = [o for o in outcomes if o.ok]
    assert all(o.result["risk_assessment"]["overall_risk_level"] for o in ok)
    assert all(o.company_name == f"Co {o.index}" for o in outcomes)
    assert len({o.result.scan_id for o in ok}) == 19
    last = statuses[-1]
    assert last["total"] == 20 and last["done"] == 20 and last["completed"] == 19 and last["failed"] == 1
    assert last["requests"] >= 20 and last["eta"] is None


def test_companies_may_be_dicts_and_bad_ones_are_named(client):
    outcomes = list(client.scan_many([{"name": "A", "website": "https://py-dict-a.example"},
                                      {"company_name": "B", "company_website": "https://py-dict-b.example"}]))
    assert all(o.ok for o in outcomes)
    with pytest.raises(exona.InvalidArgumentError, match="company 2"):
        client.scan_many([("A", "https://a.example"), ("B",)])


def test_a_journaled_run_resumes_without_requests(client, tmp_path, sim, key):
    journal = tmp_path / "portfolio.journal"
    companies = [(f"Co {i}", f"https://py-journal-{i}.example") for i in range(5)]
    first = {o.index: o.result.scan_id for o in client.scan_many(companies, journal=journal)}
    sent = sim.stats(key)
    again = client.scan_many(companies, journal=journal)
    second = {o.index: o.result.scan_id for o in again}
    assert second == first
    # Finished rows come from the journal: not one request, so no company created twice.
    assert sim.stats(key) == sent
    assert again.status()["requests"] == 0 and again.status()["done"] == 5


def test_leaving_the_loop_early_cancels_the_rest(client):
    companies = [("Stuck", f"https://stuck.py-early-{i}.example") for i in range(3)] + \
        [("Fast", "https://py-early-fast.example")]
    with client.scan_many(companies, timeout=60) as run:
        first = next(iter(run))
        assert first.company_name == "Fast"
    # Closed: the stuck rows were cancelled, not waited for; iterating again ends at once.
    assert list(run) == []


def test_a_journal_in_use_is_refused_with_its_path(client, tmp_path):
    journal = tmp_path / "busy.journal"
    companies = [("Stuck", "https://stuck.py-busy.example")]
    with client.scan_many(companies, journal=journal, timeout=60):
        with pytest.raises(exona.InvalidArgumentError, match="busy.journal"):
            client.scan_many(companies, journal=journal)

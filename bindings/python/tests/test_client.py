"""Every call of ExonaClient against exona-sim, with the guide's signatures and return values."""

from __future__ import annotations

import json

import pytest

import exona


def test_scan_and_wait_returns_the_scans_result_as_the_guide_does(client):
    result = client.scan_and_wait("Acme AI Ltd", "https://acme.ai")
    assert isinstance(result, dict)
    assert set(result) == {"enrichment", "risk_assessment", "matched_incidents"}
    assert result["risk_assessment"]["overall_risk_level"] in ("Low", "Medium", "High", "Very High")
    assert isinstance(result["risk_assessment"]["autonomy"]["score"], int)
    # What libexona adds, without changing the dict.
    assert result.scan_id.startswith("scn_test_")
    assert result.scan["status"] == "completed"
    assert result.scan["company"]["name"] == "Acme AI Ltd"
    assert result.overall_risk_level == result["risk_assessment"]["overall_risk_level"]
    assert not result.cached
    json.dumps(result)  # a plain dict underneath


def test_create_get_and_wait_by_id(client):
    created = client.create_scan("Acme", "https://py-create.example")
    assert created["status"] == "processing"
    assert created["id"] == created.scan_id and created.http_status == 201
    got = client.get_scan(created["id"])
    assert got["id"] == created["id"] and got["status"] in ("processing", "completed")
    result = client.wait(created["id"])
    assert result.scan_id == created["id"] and "risk_assessment" in result


def test_max_age_days_returns_a_cached_scan(client):
    first = client.scan_and_wait("Acme", "https://py-cache.example")
    again = client.create_scan("Acme", "https://py-cache.example", max_age_days=30)
    assert again["status"] == "completed" and again["id"] == first.scan_id
    assert again.cached or again.from_store
    fresh = client.scan_and_wait("Acme", "https://py-cache.example", max_age_days=30, force_refresh=True)
    assert fresh.scan_id != first.scan_id


@pytest.mark.parametrize("questionnaire", [
    [{"question": "Do you use AI for underwriting?", "answer": "Yes, with human review"}],
    [("Do you use AI for underwriting?", "Yes, with human review")],
    {"Do you use AI for underwriting?": "Yes, with human review"},
])
def test_questionnaire_data_in_each_shape_makes_a_new_scan(client, questionnaire):
    result = client.scan_and_wait("Acme", "https://py-questions.example", questionnaire_data=questionnaire,
                                  include_field_citations=True)
    assert result.scan["status"] == "completed"


def test_the_key_comes_from_the_environment(monkeypatch, key):
    monkeypatch.setenv("EXONA_API_KEY", key)
    with exona.ExonaClient() as c:
        assert c.scan_and_wait("Acme", "https://py-envkey.example").scan_id.startswith("scn_test_")


def test_settings_are_taken_and_bad_ones_named(key, tmp_path):
    with exona.ExonaClient(key, state_dir=str(tmp_path / "s"), poll_mode="frugal", connect_timeout=5,
                           attempt_timeout=30, user_agent_suffix="py-test/1.0", proxy="",
                           expected_duration=(0.05, 0.15)) as c:
        assert c.scan_and_wait("Acme", "https://py-settings.example").scan_id
    bad = [
        ({"poll_mode": "fast"}, "poll_mode"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"expected_duration": (3, 1)}, "expected_duration"),
        ({"user_agent_suffix": "bad\nvalue"}, "user_agent_suffix"),
        ({"ca_bundle": str(tmp_path / "missing.pem")}, "ca_bundle"),
    ]
    for settings, name in bad:
        with pytest.raises(exona.InvalidArgumentError, match=name):
            exona.ExonaClient(key, **settings)
    with pytest.raises(TypeError):
        exona.ExonaClient(key, no_such_setting=1)
    # The fleet store's URL: checked, never repeated (it may hold a password).
    with pytest.raises(exona.InvalidArgumentError, match="state_url") as caught:
        exona.ExonaClient(key, state_url="mysql://u:py-secret-pw@h/x")
    assert "py-secret-pw" not in str(caught.value)
    exona.ExonaClient(key, state_url="postgresql://u:pw@127.0.0.1:1/x").close()  # reached on first use


def test_per_call_options_are_checked(client):
    for kwargs, name in [({"max_age_days": 400}, "max_age_days"), ({"timeout": 0}, "timeout"),
                         ({"mode": "fast"}, "mode"), ({"thrift": 2}, "thrift"),
                         ({"questionnaire_data": [{"question": "q"}]}, "questionnaire_data item 1")]:
        with pytest.raises(exona.InvalidArgumentError, match=name):
            client.scan_and_wait("Acme", "https://py-opts.example", **kwargs)
    with pytest.raises(exona.InvalidArgumentError, match="company_name"):
        client.scan_and_wait(None, "https://py-opts.example")


def test_a_closed_client_says_so(key):
    c = exona.ExonaClient(key)
    c.close()
    c.close()  # twice is harmless
    with pytest.raises(exona.CancelledError, match="closed"):
        c.get_scan("scn_test_x")


def test_progress_events_describe_each_wait(client):
    events = []
    result = client.scan_and_wait("Acme", "https://py-progress.example", on_progress=events.append)
    assert any(e["scan_id"] == result.scan_id and e["requests_used"] >= 1 for e in events), events
    assert all(e["reason"] in ("create", "schedule", "retry_after", "backoff", "rate_limit", "budget",
                               "final_poll", "other_create") for e in events), events
    assert all(e["regime"] in ("adaptive", "latency", "frugal") and 0 <= e["thrift"] <= 1 for e in events)


def test_the_library_is_found_and_versioned():
    # "0.1.0+COMMIT": the release, and the commit the library was built from.
    assert exona.version().split("+")[0] == exona.__version__
    assert exona.library

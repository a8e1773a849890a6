"""Every exception: its class (and the built-in it also is), its code and the ids it carries."""

from __future__ import annotations

import pytest

import exona
from conftest import FORBIDDEN_KEY, REVOKED_KEY


def test_a_failed_scan_is_a_runtime_error_with_its_ids(client):
    with pytest.raises(RuntimeError) as caught:
        client.scan_and_wait("Gone", "https://gone.invalid")
    e = caught.value
    assert isinstance(e, exona.ScanFailedError) and isinstance(e, exona.Error)
    assert e.code == "scan_failed" and e.code_name == "EXONA_ERR_SCAN_FAILED"
    assert e.scan_id.startswith("scn_test_") and e.request_id.startswith("req_")
    assert e.api_code == "WEBSITE_UNREACHABLE"
    assert e.scan["status"] == "failed" and e.scan["error"]
    assert e.scan_id in str(e)


def test_a_deadline_is_a_timeout_error_and_the_scan_resumes_by_id(client):
    with pytest.raises(TimeoutError) as caught:
        client.scan_and_wait("Stuck", "https://stuck.py.example", timeout=0.5)
    e = caught.value
    assert isinstance(e, exona.ScanTimeoutError) and e is not None and e.code == "timeout"
    assert e.scan_id.startswith("scn_test_")
    assert exona.TimeoutError is exona.ScanTimeoutError
    with pytest.raises(exona.ScanTimeoutError) as again:
        client.wait(e.scan_id, timeout=0.3)  # resumed by id: no new scan
    assert again.value.scan_id == e.scan_id


def test_an_argument_refused_before_sending_is_a_value_error(client):
    with pytest.raises(ValueError) as caught:
        client.scan_and_wait("Acme", "http://acme.ai")  # the API wants https://
    assert isinstance(caught.value, exona.InvalidArgumentError)
    assert "company_website" in str(caught.value)


def test_keys_are_checked_and_a_revoked_key_gets_its_401(sim):
    with pytest.raises(exona.InvalidArgumentError):
        exona.ExonaClient("exo_test_bad", sim.url)
    with pytest.raises(exona.InvalidArgumentError):
        exona.ExonaClient("exo_test_" + "0" * 36, "http://example.com/")  # plain http off loopback
    with exona.ExonaClient(REVOKED_KEY) as c:
        with pytest.raises(exona.AuthenticationError) as caught:
            c.scan_and_wait("Acme", "https://py-revoked.example")
    assert caught.value.http_status == 401 and caught.value.code_name == "EXONA_ERR_AUTHENTICATION"
    assert REVOKED_KEY not in str(caught.value)


def test_an_unknown_scan_is_not_found(client):
    with pytest.raises(exona.NotFoundError) as caught:
        client.get_scan("scn_test_00000000000000000000000000")
    assert caught.value.http_status == 404 and isinstance(caught.value, LookupError)


def test_every_code_has_its_class():
    import exona.errors as errors

    for code in range(1, 15):
        cls = errors.for_code(code)
        assert issubclass(cls, exona.Error) and cls.code_name.startswith("EXONA_ERR_")
    assert issubclass(exona.NetworkError, ConnectionError)
    assert issubclass(exona.PermissionDeniedError, PermissionError)


def test_a_forbidden_key_is_a_permission_error(sim):
    with exona.ExonaClient(FORBIDDEN_KEY) as c:
        with pytest.raises(PermissionError) as caught:
            c.get_scan("scn_test_00000000000000000000000000")
    assert isinstance(caught.value, exona.PermissionDeniedError) and caught.value.http_status == 403


def test_an_unreachable_api_is_a_connection_error(key):
    with exona.ExonaClient(key, "http://127.0.0.1:1/api/v1") as c:  # nothing listens on port 1
        with pytest.raises(ConnectionError) as caught:
            c.get_scan("scn_test_00000000000000000000000000")
    assert isinstance(caught.value, exona.NetworkError) and caught.value.code == "network"

"""Options from keywords and CIOGUARD_* variables; clear errors for bad values."""

from __future__ import annotations

import pytest

import cioguard
from cioguard.config import OPTION_SPECS, Options, env_name, load_options


def test_defaults_match_the_contract() -> None:
    options = load_options({}, environ={})
    assert options == Options()
    assert options.mode == "background"
    assert options.max_queue_size == 10_000
    assert options.overflow == "drop_newest"
    assert options.flush_interval == 1.0
    assert options.max_batch_bytes < 500_000
    assert options.pitfalls == "warn"
    assert options.capture_customer_id is False


def test_environment_variables_are_read_and_keywords_win() -> None:
    environ = {
        "CIOGUARD_MODE": "blocking",
        "CIOGUARD_MAX_QUEUE_SIZE": "50000",
        "CIOGUARD_DISABLED_PITFALLS": "cio003, CIO005",
        "CIOGUARD_CAPTURE_CUSTOMER_ID": "true",
        "CIOGUARD_TRACK_URL": "http://127.0.0.1:9/",
    }
    options = load_options({"max_queue_size": 7}, environ=environ)
    assert options.mode == "blocking"
    assert options.max_queue_size == 7
    assert options.disabled_pitfalls == frozenset({"CIO003", "CIO005"})
    assert options.capture_customer_id is True
    assert options.track_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CIOGUARD_MODE", "sideways", "background, blocking"),
        ("CIOGUARD_OVERFLOW", "explode", "drop_newest, drop_oldest, block"),
        ("CIOGUARD_MAX_QUEUE_SIZE", "-3", "at least 1"),
        ("CIOGUARD_MAX_QUEUE_SIZE", "lots", "invalid literal"),
        ("CIOGUARD_MAX_BATCH_BYTES", "600000", "at most 499000"),
        ("CIOGUARD_DISABLED_PITFALLS", "CIO999", "CIO999"),
        ("CIOGUARD_CAPTURE_CUSTOMER_ID", "maybe", "true/false"),
        ("CIOGUARD_TRACK_URL", "track.example", "http:// or https://"),
    ],
)
def test_bad_environment_values_name_the_variable_and_the_fix(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=variable) as raised:
        load_options({}, environ={variable: value})
    assert expected in str(raised.value)


def test_instrument_rejects_bad_options_at_the_callers_line() -> None:
    with pytest.raises(ValueError, match="option mode='fast'"):
        cioguard.instrument(mode="fast")
    with pytest.raises(TypeError, match="unknown option"):
        cioguard.instrument(queue_size=3)
    assert cioguard.stats() == {"instrumented": False}


def test_every_option_has_an_environment_variable_name() -> None:
    for option in OPTION_SPECS:
        assert env_name(option) == "CIOGUARD_" + option.upper()

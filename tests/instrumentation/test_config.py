"""Options from keywords and CIOGUARD_* variables; clear errors for bad values."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cioguard
from cioguard.config import (
    OPTION_SPECS,
    InstrumentOptions,
    Options,
    env_name,
    load_options,
    unknown_variables,
)


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


@pytest.mark.parametrize("value", ["false", "0", "none", "off", ""])
def test_spool_path_words_for_off_turn_the_spool_off(value: str) -> None:
    # Not a file named "false" in the working directory, holding API credentials.
    assert load_options({}, environ={"CIOGUARD_SPOOL_PATH": value}).spool_path is None


def test_an_on_drop_that_cannot_take_reason_count_methods_is_refused_at_instrument() -> None:
    with pytest.raises(ValueError, match=r"on_drop.*\(reason, count, methods\)"):
        load_options({"on_drop": lambda reason, count: None})
    assert load_options({"on_drop": lambda reason, count, methods: None}).on_drop is not None
    assert load_options({"on_drop": lambda *args: None}).on_drop is not None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CIOGUARD_MODE", "sideways", "background, blocking"),
        ("CIOGUARD_OVERFLOW", "explode", "drop_newest, drop_oldest, block"),
        ("CIOGUARD_MAX_QUEUE_SIZE", "-3", "at least 1"),
        ("CIOGUARD_MAX_QUEUE_SIZE", "lots", "a whole number of at least 1"),
        ("CIOGUARD_FLUSH_INTERVAL", "1s", "a number of at least 0.01 and at most 3600 (no unit)"),
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


@pytest.mark.parametrize(
    ("name", "whole"), [("max_queue_size", 5000), ("max_retries", 5), ("max_batch_bytes", 5000)]
)
def test_a_fraction_for_a_whole_number_option_is_refused_not_truncated(name: str, whole: int) -> None:
    with pytest.raises(ValueError, match=rf"{name}.*expected a whole number, got {whole}\.5"):
        load_options({name: whole + 0.5}, environ={})
    assert getattr(load_options({name: float(whole)}, environ={}), name) == whole  # a whole float is fine


def test_instrument_rejects_bad_options_at_the_callers_line() -> None:
    with pytest.raises(ValueError, match="option mode='fast'"):
        cioguard.instrument(mode="fast")
    with pytest.raises(TypeError, match="unknown option"):
        cioguard.instrument(queue_size=3)
    assert cioguard.stats()["instrumented"] is False


def test_every_option_has_an_environment_variable_name() -> None:
    for option in OPTION_SPECS:
        assert env_name(option) == "CIOGUARD_" + option.upper()


def test_unknown_option_names_the_closest_one() -> None:
    with pytest.raises(TypeError, match=r"queue_size \(did you mean max_queue_size\?\)"):
        load_options({"queue_size": 3}, environ={})


def test_unknown_environment_variables_are_reported_once_with_a_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {"CIOGUARD_FLUSH_INTERVALL": "2", "CIOGUARD_REGISTRY": "x", "CIOGUARD_MODE": "blocking"}
    assert unknown_variables(environ) == [
        "CIOGUARD_FLUSH_INTERVALL is not a cioguard option and is ignored "
        "(did you mean CIOGUARD_FLUSH_INTERVAL?)",
        "CIOGUARD_REGISTRY is ignored: registry is an object; pass instrument(registry=...)",
    ]
    with caplog.at_level(logging.WARNING, logger="cioguard"):
        load_options({}, environ=environ)
        load_options({}, environ=environ)
    reported = [r.getMessage() for r in caplog.records if "FLUSH_INTERVALL" in r.getMessage()]
    assert len(reported) == 1


def test_typed_options_match_the_option_table() -> None:
    assert set(InstrumentOptions.__annotations__) == set(OPTION_SPECS)


@pytest.mark.slow
def test_mypy_checks_instrument_keywords(tmp_path: Path) -> None:
    from mypy import api

    source = tmp_path / "app.py"
    source.write_text(
        "import cioguard\n"
        "cioguard.instrument(mode='background', max_queue_size=5, delivery_timeout=60.0)\n"
        "cioguard.instrument(mode='fast')\n"
        "cioguard.instrument(queue_size=3)\n"
    )
    out, _, status = api.run(
        [str(source), "--strict", "--no-incremental", "--cache-dir", os.devnull, "--follow-imports=silent"]
    )
    assert status == 1, out
    assert "app.py:2:" not in out
    assert "app.py:3:" in out  # "fast" is not a mode
    assert "app.py:4:" in out  # no such option


def test_a_replaced_customerio_package_gets_a_clear_error(tmp_path: Path) -> None:
    # What installing customerio-cdp-analytics next to the SDK does: an empty customerio/__init__.py
    # over the SDK's modules.
    import customerio

    shadow = tmp_path / "customerio"
    shutil.copytree(Path(customerio.__file__).parent, shadow)
    (shadow / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", "import cioguard; cioguard.instrument()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: cioguard: the installed `customerio` package has no CustomerIO")
    assert "customerio-cdp-analytics" in last
    assert "pip install --force-reinstall" in last

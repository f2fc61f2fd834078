"""The same whole-stack equivalence as ``test_equivalence_end_to_end``, in the default "warn" mode.

Under pytest (``filterwarnings=error``) the pitfall rules stay on the caller, so the caller's fast
path with the rules deferred to the sender (:mod:`cioguard.instrumentation.express`) only runs in a
process with Python's default warning filters: a real child process replays every scenario with the
plain SDK and with ``cioguard.instrument()`` defaults, and reports which ones differ.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_CHILD = textwrap.dedent(
    """
    import importlib.util, sys, warnings
    import cioguard
    from cioguard.instrumentation.instrumentor import active_runtime
    from cioguard.testing import FakeCustomerIO

    warnings.showwarning = lambda *args, **kwargs: None  # findings are expected; not the subject
    spec = importlib.util.spec_from_file_location("e2e", sys.argv[1])
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    print("total", len(e2e.scenarios.SCENARIOS))
    for name in sorted(e2e.scenarios.SCENARIOS):
        steps = [step for step in e2e.scenarios.SCENARIOS[name] if not e2e._by_cio_id(step)]
        with FakeCustomerIO() as plain, FakeCustomerIO() as guarded, guarded.trust():
            e2e._replay(plain, steps, e2e._plain)
            cioguard.instrument(track_url=guarded.track_url)
            deferred = active_runtime().pitfalls.deferral_open()
            try:
                e2e._replay(guarded, steps, e2e._plain)
                delivered = cioguard.flush(timeout=10)
            finally:
                cioguard.uninstrument(timeout=5)
            same = e2e._comparable(guarded.snapshot()) == e2e._comparable(plain.snapshot())
            print("scenario", name, "deferred" if deferred else "on-caller", delivered, same)
    """
)


def test_warn_mode_fast_path_reaches_the_same_state_as_the_plain_sdk(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    e2e = Path(__file__).with_name("test_equivalence_end_to_end.py")
    result = subprocess.run(
        [sys.executable, str(script), str(e2e)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("scenario ")]
    assert f"total {len(rows)}" in result.stdout.splitlines(), result.stdout  # every scenario ran
    assert all(row[2] == "deferred" for row in rows), rows  # the rules really waited for the sender
    assert [row[1] for row in rows if row[3:] != ["True", "True"]] == []

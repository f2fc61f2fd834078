"""A real Prometheus server for tests: free port, temporary TSDB, 1 s scrapes of given targets.

::

    with PrometheusServer(tmp_path, targets=["127.0.0.1:8000"], rule_files=[ALERTS]) as prom:
        prom.wait_target_up(timeout=20)
        result = prom.query('sum(rate(customerio_calls_total[1m]))')
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

JOB = "cioguard-app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class QueryError(AssertionError):
    pass


class PrometheusServer:
    def __init__(self, workdir: Path, targets: list[str], rule_files: list[Path] | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is not installed: run `make system-deps` (Debian package prometheus)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(path) for path in rule_files or []],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(lambda: self._get("/-/ready") is not None, 20, "Prometheus to be ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body: bytes = response.read()
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def _wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n{self.log()}")
            if condition():
                return
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout} s for {what}\n{self.log()}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            document = json.loads(exc.read() or b"{}")
            exc.close()
            raise QueryError(f"{path} {params}: HTTP {exc.code}: {document.get('error')}") from None
        if document.get("status") != "success":
            raise QueryError(f"{path} {params}: {document}")
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query now; returns the vector (scalars are wrapped as one sample)."""
        data = self.api("query", query=expr, time=f"{time.time():.3f}")
        if data["resultType"] == "vector":
            result: list[dict[str, Any]] = data["result"]
            return result
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise QueryError(f"{expr}: unexpected result type {data['resultType']}")

    def values(self, expr: str) -> list[float]:
        return [float(sample["value"][1]) for sample in self.query(expr)]

    def wait_target_up(self, timeout: float = 20.0) -> None:
        def up() -> bool:
            targets = self.api("targets")["activeTargets"]
            return bool(targets) and all(t["health"] == "up" for t in targets)

        self._wait(up, timeout, "the scrape target to be up")

    def wait_scrapes(self, count: int = 2, timeout: float = 20.0) -> None:
        """Return once ``count`` scrapes have started after now (the data is in the TSDB)."""
        since = time.time()

        def scraped() -> bool:
            targets = self.api("targets")["activeTargets"]
            return all(_parse_time(t["lastScrape"]) >= since + (count - 1) for t in targets)

        self._wait(scraped, timeout, f"{count} scrapes")


def _parse_time(text: str) -> float:
    """RFC 3339 with nanoseconds (``2026-11-24T19:45:01.123456789Z``) as Unix seconds."""
    match = re.match(r"^(?P<head>[^.Z+]+(?:T[^.Z+-]+)?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$", text)
    if match is None:
        return 0.0
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    fraction = (match["frac"] or "0")[:6]
    return datetime.fromisoformat(f"{match['head']}.{fraction}{zone}").timestamp()

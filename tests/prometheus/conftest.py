"""Prometheus/dashboard tests: make the helper modules importable (--import-mode=importlib), and
``dashboards/`` too, where ``build_dashboard.py`` imports ``grafana_model`` (as it does when run)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dashboards"))

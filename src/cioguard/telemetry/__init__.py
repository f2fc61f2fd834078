"""Telemetry: where cioguard's measurements go (Prometheus, OpenTelemetry metrics, spans)."""

from cioguard.telemetry.recorder import NullRecorder, Recorder, get_recorder, set_recorder

__all__ = ["NullRecorder", "Recorder", "get_recorder", "set_recorder"]

"""Tests for cioguard.operations (binding, serialisation, ULIDs, v1 -> v2 mapping)."""

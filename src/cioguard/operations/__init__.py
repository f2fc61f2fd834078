"""Call → operation model: argument binding, serialisation, v1 → v2 mapping (plain data)."""

from cioguard.operations.model import ApiKind, Call, Endpoint, Operation, Route

__all__ = ["ApiKind", "Call", "Endpoint", "Operation", "Route"]

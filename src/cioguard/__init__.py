"""cioguard: non-blocking, observable and correct Customer.io for Python."""

from cioguard.version import __version__

__all__ = ["__version__"]

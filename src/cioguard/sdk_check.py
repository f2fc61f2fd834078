"""Make sure ``customerio`` is the official SDK before cioguard touches it.

::

    from cioguard.sdk_check import require_sdk
    require_sdk()   # ImportError with the fix, instead of an obscure "cannot import name" later

Customer.io's CDP library (``customerio-cdp-analytics``) installs an empty ``customerio/__init__.py``
over the SDK's when both are installed into one environment: ``from customerio import CustomerIO``
then fails in the app and in cioguard alike. This check names the clash and the fix.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util


def _owners() -> list[str]:
    """Distributions installed that provide the top-level ``customerio`` package."""
    try:
        return sorted(set(importlib.metadata.packages_distributions().get("customerio", [])))
    except Exception:  # metadata of some other distribution is broken: say nothing rather than fail
        return []


def sdk_problem() -> str | None:
    """Why ``customerio`` is not the SDK cioguard instruments, or None when it is."""
    if importlib.util.find_spec("customerio") is None:
        return (
            "cioguard instruments the official Customer.io SDK, which is not installed: "
            "pip install 'customerio>=3,<4'"
        )
    module = importlib.import_module("customerio")
    if hasattr(module, "CustomerIO") and hasattr(module, "APIClient"):
        return None
    others = [name for name in _owners() if name.lower() != "customerio"]
    culprit = ", ".join(others) if others else "another distribution"
    uninstall = " ".join(others) if others else "<that distribution>"
    return (
        f"the installed `customerio` package has no CustomerIO/APIClient: its customerio/__init__.py "
        f"({getattr(module, '__file__', '?')}) was replaced by {culprit}, installed into the same "
        "environment (Customer.io's CDP library customerio-cdp-analytics ships an empty one). "
        f"Fix: pip uninstall -y {uninstall} && pip install --force-reinstall 'customerio>=3,<4', "
        "and keep the CDP library in a separate environment."
    )


def require_sdk() -> None:
    """Raise ImportError naming the package clash and its fix when ``customerio`` is not the SDK."""
    problem = sdk_problem()
    if problem is not None:
        raise ImportError(f"cioguard: {problem}", name="customerio")

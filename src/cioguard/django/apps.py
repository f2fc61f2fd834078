"""The Django app: ``INSTALLED_APPS += ["cioguard.django"]`` instruments the SDK at start-up.

``ready()`` calls :func:`cioguard.instrument` with the ``CIOGUARD`` setting (a dict of its keyword
options; absent means ``{}``, ``None`` means do not instrument). Instrumenting is idempotent and
cheap (the sender thread starts on the first call), so the autoreloader's parent process, management
commands and forked workers are all fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def cioguard_options() -> dict[str, Any] | None:
    """The ``CIOGUARD`` setting as keyword options (``None``: do not instrument)."""
    options = getattr(settings, "CIOGUARD", {})
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            f"settings.CIOGUARD must be a dict of cioguard.instrument() options, got {type(options).__name__}"
        )
    return dict(options)


class CioGuardConfig(AppConfig):
    name = "cioguard.django"
    label = "cioguard"
    verbose_name = "cioguard (Customer.io)"

    def ready(self) -> None:
        options = cioguard_options()
        if options is None:
            return
        import cioguard

        try:
            cioguard.instrument(**options)
        except (TypeError, ValueError) as exc:
            # Documented validation errors, re-raised the way Django reports bad settings.
            raise ImproperlyConfigured(f"settings.CIOGUARD: {exc}") from exc

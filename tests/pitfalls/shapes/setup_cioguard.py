"""The project's one-line setup: background delivery (lint drops CIO007/CIO011 for Track calls)."""

import cioguard


def setup(**options: object) -> None:
    cioguard.instrument(**options)  # type: ignore[arg-type]

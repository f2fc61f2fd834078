"""AWS Lambda freezes the process when a handler returns: say so once when nothing flushes.

::

    watch = FreezeWatch()        # per runtime; does nothing outside Lambda
    watch.answered()             # the sender got an HTTP answer (sender thread)
    watch.flushed = True         # cioguard.flush() was called
    mark_decorated()             # @cioguard.serverless.handler decorated a function

Lambda freezes the process as soon as the handler returns: queued calls wait for the next
invocation (if any) and are lost with the instance. ``@cioguard.serverless.handler`` (or a
``cioguard.flush()`` before returning) delivers first. When the sender's first answer comes on
Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) and neither was ever used, a warning is logged once:
the calls of that invocation went out only after a thaw, or not at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

__all__ = ["LAMBDA_VARIABLE", "FreezeWatch", "mark_decorated"]

logger = logging.getLogger("cioguard")

#: Set by the Lambda runtime (and by SAM / the runtime interface emulator).
LAMBDA_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"
_decorated = False


def mark_decorated() -> None:
    """A handler of this process is decorated with ``@cioguard.serverless.handler``."""
    global _decorated
    _decorated = True


class FreezeWatch:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._function = environ.get(LAMBDA_VARIABLE, "")
        #: Invariant: True only until the first answer (one test per answer before that).
        self.pending = bool(self._function)
        self.flushed = False

    def answered(self) -> None:
        if not self.pending:
            return
        self.pending = False
        if not (_decorated or self.flushed):
            logger.warning(
                "cioguard: on AWS Lambda (function %s) no handler is decorated with "
                "@cioguard.serverless.handler and cioguard.flush() was never called: Lambda freezes "
                "the process when the handler returns, so its queued calls wait for the next "
                "invocation and are lost when the instance is recycled. Decorate the handler, or "
                "call cioguard.flush() before it returns.",
                self._function,
            )

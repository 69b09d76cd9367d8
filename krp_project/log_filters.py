"""Logging filters named in krp_project.settings.LOGGING."""

from __future__ import annotations

import logging


class WithoutTraceback(logging.Filter):
    """Keep the record's message, drop its traceback.

    botocore.credentials logs a failed refresh of assumed-role credentials (the endpoint
    down, say) as a warning with the whole traceback, then raises the error, which KRP
    classifies and reports itself: an operator needs the line, not the trace twice.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True

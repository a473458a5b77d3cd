"""The pack's logger and the one prefix of its log lines."""

from __future__ import annotations

import logging

LOG_PREFIX = "[TaylorSeer]"
logger = logging.getLogger("taylor_forecast")

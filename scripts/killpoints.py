"""The crash-safety test hook every writing step shares: die by SIGKILL at a named point.

``$SHOEREC_<STEP>_KILL_AT=<stage>[:<k>]`` kills the process, as abruptly as possible, the k-th time
(default: the first) it reaches ``stage``. tests/test_crash_safety.py (and the refresh and notify
tests) kill each step at every point and check that nothing committed is lost.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter

log = logging.getLogger(__name__)


def kill_point(env_var: str, reached: Counter, stage: str) -> None:
    """Count ``stage`` in ``reached`` and SIGKILL this process if ``$env_var`` names this visit."""
    wanted = os.environ.get(env_var)
    if not wanted:
        return
    reached[stage] += 1
    name, _, k = wanted.partition(":")
    if name == stage and reached[stage] == int(k or 1):
        log.warning("%s=%s: killing this process", env_var, wanted)
        os.kill(os.getpid(), signal.SIGKILL)

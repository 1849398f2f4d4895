"""Import the legacy ``gym`` package once, with its deprecation notice kept off stderr.

d3rlpy (the ``consumers`` extra) requires the old ``gym``, whose import prints a four-line notice
to stderr; shimmy imports it whenever gymnasium loads its plugins, so every process (each worker,
each evaluation) would print it. VORB never uses ``gym``. Imported first by ``benchmark``.
"""

from __future__ import annotations

import contextlib
import io
import sys

if "gym" not in sys.modules:
    # ImportError: gym not installed, nothing to silence.
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
        import gym  # noqa: F401

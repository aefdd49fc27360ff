"""A hold for kill tests: put this folder on PYTHONPATH and a process that is about to commit a
task marker (`*.done.json`) into DOCSYNTH_HOLD_DIR waits while that folder already holds
DOCSYNTH_HOLD_AFTER of them. So a run finishes that many tasks (a few more where workers commit
at the same instant) and no more, however fast the machine, until the test kills it: the test
waits on the markers, never on time."""

import os
import time

_DIR = os.environ.get("DOCSYNTH_HOLD_DIR")
_AFTER = int(os.environ.get("DOCSYNTH_HOLD_AFTER", "0"))


def _markers(folder: str) -> int:
    try:
        return sum(name.endswith(".done.json") for name in os.listdir(folder))
    except OSError:
        return 0


def _wrap(fn):
    def commit(src, dst, *args, **kwargs):
        target = os.fspath(dst)
        if target.startswith(_DIR) and target.endswith(".done.json"):
            while _markers(os.path.dirname(target)) >= _AFTER:
                time.sleep(0.05)  # held until the test kills this process
        return fn(src, dst, *args, **kwargs)
    return commit


if _DIR and _AFTER:
    os.replace, os.rename = _wrap(os.replace), _wrap(os.rename)

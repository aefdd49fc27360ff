"""Fault injection for crash tests: put this folder on PYTHONPATH and the process kills itself
(SIGKILL: no handler, no cleanup, as the OOM killer would) just before its Nth rename, replace,
unlink or swap (docsynth.core.files.exchange) of a path under DOCSYNTH_KILL_ROOT (N = DOCSYNTH_KILL_AT). A process that finishes
with fewer such steps exits normally: the test learns that N has passed the last step."""

import os
import sys
import signal

_ROOT = os.environ.get("DOCSYNTH_KILL_ROOT")
_AT = int(os.environ.get("DOCSYNTH_KILL_AT", "0"))
_seen = 0


def _wrap(fn):
    def step(*args, **kwargs):
        global _seen
        if any(os.fspath(a).startswith(_ROOT) for a in args[:2] if isinstance(a, (str, os.PathLike))):
            _seen += 1
            if os.environ.get('DOCSYNTH_KILL_TRACE'):
                print('STEP', _seen, fn.__name__, *args[:2], file=sys.stderr)
            if _seen == _AT:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return step


class _WrapExchange:
    """Wrap docsynth.core.files.exchange as it is imported, before any module takes it by name."""

    def find_spec(self, name, path=None, target=None):
        if name != "docsynth.core.files":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.exchange = _wrap(module.exchange)
        spec.loader.exec_module = exec_module
        return spec


if _ROOT and _AT:
    os.rename, os.replace, os.unlink, os.remove = map(_wrap, (os.rename, os.replace, os.unlink, os.remove))
    sys.meta_path.insert(0, _WrapExchange())

"""Run by Python at the start of every process whose PYTHONPATH has this folder (vLLM's engine
processes, started with `spawn`): the torch companion libraries docsynth.core.torchlibs found
broken in the parent (DOCSYNTH_HIDDEN_TORCH_LIBS) are marked as not installed here too, before
vLLM or transformers import them. Then the sitecustomize this one shadows, if any, runs."""

import importlib.machinery
import importlib.util
import os
import sys

for _name in filter(None, os.environ.get("DOCSYNTH_HIDDEN_TORCH_LIBS", "").split(",")):
    sys.modules.setdefault(_name, None)

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or os.curdir) != _here])
if _spec is not None and _spec.loader is not None:
    _theirs = importlib.util.module_from_spec(_spec)
    sys.modules["sitecustomize"] = _theirs
    _spec.loader.exec_module(_theirs)

"""An engine process ends when the process that started it dies.

vLLM's engine processes outlive a SIGKILLed parent (`docsynth run` killed -9, or by the OOM
killer): measured here, each such run left a VLLM::EngineCore and its worker, reparented to
init and holding the model and its KV cache (9 GB for the instruct model on the CPU; on a GPU
machine, the GPU) until killed by hand. Nothing in the dead parent can run, so each engine process watches for
itself: started from docsynth's logging handler, the first docsynth code every engine process
runs (docsynth.llm.backends.enginelog).
"""

from __future__ import annotations

import os
import signal
import threading
import time

POLL_S = 1.0
GRACE_S = 10.0  # after SIGTERM (vLLM's own shutdown), before SIGKILL


def watch_parent() -> None:
    """Terminate this process once its parent is gone (it is then reparented: its parent pid
    changes), SIGKILL it if it is still alive GRACE_S later. Idempotent."""
    global _watching
    if _watching:
        return
    _watching = True
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="docsynth-parent-watch", daemon=True).start()


_watching = False

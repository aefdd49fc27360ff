"""A folder put first on the PYTHONPATH of the engine processes docsynth starts, for its
sitecustomize (docsynth.core.torchlibs says why)."""

"""Executors: the pipeline (which stages, in what order) and what runs their tasks, on this
machine (local) or on a Ray cluster (ray).
They place work; what a task does, and where its output goes, is the stage's (docsynth.core.stage)."""

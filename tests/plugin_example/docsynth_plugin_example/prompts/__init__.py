"""Prompt templates of the example plugin (entry point docsynth.prompts: example)."""

"""An example docsynth plugin (see pyproject.toml for its entry points)."""

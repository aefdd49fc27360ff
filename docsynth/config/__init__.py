"""Configuration schemas (pydantic): the recipe and its sections, mixtures, push options, and how a file or a mapping is parsed and checked (section). Defaults live here and nowhere else."""

"""The LLM layer, below the stages that ask a model (generate, verify): backends (vLLM in-process,
any OpenAI-compatible server, plugins) with their registry, the session that opens one for a
recipe, model resolution, the token budget, images for a model, parsing model output, and
prompt templates. Nothing here imports a stage (the import contracts in pyproject.toml)."""

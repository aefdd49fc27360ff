"""The base layer: configuration, records, tasks and their files, the process pool, text helpers.

Nothing here imports a stage, an executor or the CLI (checked by the import contracts in
pyproject.toml)."""

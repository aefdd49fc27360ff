"""The run kernel: tasks and their store, the run directory's names, records between stages,
summaries, files written atomically, locks, the process pool, children and signals, object
storage, plugins' entry points, text helpers and shipped resources.

Nothing here imports a stage, an executor, the CLI or a config schema (checked by the import
contracts in pyproject.toml)."""

"""Errors the library raises for people to read (the CLI prints them, no traceback)."""


class DocsynthError(Exception):
    """A user-facing failure: bad configuration, missing dependency, unusable input."""


class RecipeError(DocsynthError):
    """A recipe that does not validate; the message names every bad key path."""


class UsageError(DocsynthError):
    """A command-line value that cannot be right (the CLI exits 2, as for an invalid recipe)."""


class MissingDependencyError(DocsynthError):
    """A program or package the requested work needs is not installed."""

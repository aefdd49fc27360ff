"""docsynth's version, in the core so that every layer can name it without importing the
package's top (docsynth/__init__.py re-exports it; pyproject reads it from here)."""

__version__ = "0.1.0"

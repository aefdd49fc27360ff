"""A filter plugin: drop pairs whose answer has more digits than a limit."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MaxDigits:
    """Drops a pair whose answer holds more than `max_digits` digits."""

    class Config(BaseModel):
        """The filter's recipe keys (besides `name`)."""

        model_config = ConfigDict(extra="forbid")
        max_digits: int = Field(4, ge=0)

    def __init__(self, config: Config) -> None:
        self.config = config

    def __call__(self, pair, kept):
        digits = sum(c.isdigit() for c in pair.answer)
        if digits > self.config.max_digits:
            return False, f"max_digits: {digits} digits in the answer"
        return True

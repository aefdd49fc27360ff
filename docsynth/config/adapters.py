"""How to read a table that is not in the Cauldron schema (a mixture's source, an evaluation set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from docsynth.config.section import Section


class QAAdapter(Section):
    """Rows with an image column and question/answer columns (VQA-style)."""

    kind: Literal["qa"] = "qa"
    image: str = Field("image", description="the image column: an image, a list of images, or a path")
    question: str = Field("question", description="the question column: a string, or a list (one turn each)")
    answer: str = Field("answer", description="the answer column: a string, a list of answers, or one list per question")
    answers: Literal["first", "most_common", "join"] = Field(
        "first", description="several answers to one question: keep the first, the most common, or all joined by '; '")
    image_root: Path | None = Field(None, description="where relative image paths resolve (default: the source's folder)")


class LlavaAdapter(Section):
    """LLaVA-style rows: `conversations` of {from: human|gpt, value} turns, images as paths."""

    kind: Literal["llava"] = "llava"
    image: str = Field("image", description="the image column: a path or a list of paths")
    conversations: str = "conversations"
    image_root: Path | None = Field(None, description="where image paths resolve (default: the source's folder)")


class MessagesAdapter(Section):
    """Chat rows: `messages` of {role, content} where content is a string or a list of parts
    ({type: text, text} / {type: image}), images in an `images` column in order of the image parts."""

    kind: Literal["messages"] = "messages"
    messages: str = "messages"
    images: str = Field("images", description="the images column (a list of images or paths)")
    image_root: Path | None = Field(None, description="where image paths resolve (default: the source's folder)")


Adapter = Annotated[QAAdapter | LlavaAdapter | MessagesAdapter, Field(discriminator="kind")]

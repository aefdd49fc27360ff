"""The shapes a dataset or mixture can be written in (a mixture's `format`, `docsynth export
--format`): each a function of a Cauldron table (with the top-level source and quality columns)
and the card features of its columns.

    cauldron    images, texts of {user, assistant, source}, source, quality columns (as written)
    messages    images, chat messages, source, quality columns (docsynth.dataset.messages)
    finevision  images, texts of {user, assistant}, source, quality columns (docsynth.dataset.finevision)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from docsynth.dataset.cauldron import CARD_FEATURES, DATASET_CARD_FEATURES, QUALITY_COLUMNS
from docsynth.dataset.finevision import CARD_FEATURES as FINEVISION_FEATURES, finevision_table
from docsynth.dataset.messages import CARD_FEATURES as MESSAGES_FEATURES, messages_table

_SOURCE = [f for f in DATASET_CARD_FEATURES if f["name"] == "source"]


@dataclass(frozen=True)
class View:
    name: str
    table: Callable[[pa.Table], pa.Table]
    features: list[dict]  # the card's, of the view's own columns
    says: str  # for the card: what the columns are

    def card_features(self, columns: list[str]) -> list[dict]:
        """The card's features of a shard with these columns: the view's, then the quality columns it has."""
        return self.features + [f for f in DATASET_CARD_FEATURES if f["name"] in QUALITY_COLUMNS and f["name"] in columns]

    def schema(self, of: pa.Schema) -> pa.Schema:
        """The schema of the view of tables of schema OF."""
        return self.table(of.empty_table()).schema


VIEWS = {v.name: v for v in (
    View("cauldron", lambda t: t, CARD_FEATURES + _SOURCE,
         "the schema of The Cauldron (`images`; `texts` of user/assistant/source), with each row's `source`"),
    View("messages", messages_table, MESSAGES_FEATURES,
         "the messages view (`images`; chat `messages`, the first user turn holding the image parts; `source`), "
         "the shape TRL's VLM SFT and Hugging Face chat templates take"),
    View("finevision", finevision_table, FINEVISION_FEATURES,
         "FineVision's shape (`images`; `texts` of user/assistant; `source`): `datasets.concatenate_datasets` "
         "takes it beside a FineVision subset"),
)}

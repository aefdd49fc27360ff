"""A MixtureDataset as a `datasets.IterableDataset` (docsynth.loader's `as_datasets`): the
epoch cut into shards that accelerate can hand to its processes, each shard a fixed slice of the
seeded order, so the data is split once and the order is the same on every run."""

from __future__ import annotations

from docsynth.core.errors import MissingDependencyError


def _features(output: str):
    from datasets import Features, Image, List, Value

    if output == "cauldron":
        return Features({"images": List(Image()), "texts": List({"user": Value("string"), "assistant": Value("string"),
                                                                 "source": Value("string")})})
    return Features({"images": List(Image()), "messages": List({"role": Value("string"), "content": List(
        {"type": Value("string"), "text": Value("string")})})})


def _rows(shards: list[int], state: dict):
    """The rows of these shards, in order: each the mixture's slice `shard` of `count` ways (state
    carries the dataset class: this layer reads no loader module)."""
    for shard in shards:
        part = state["cls"](state["path"], seed=state["seed"], epoch=state["epoch"], shuffle_buffer=state["buffer"],
                              rank=shard, world_size=state["count"], output=state["output"], decode_images=False)
        part.warn_split = False  # a shard of the whole epoch: accelerate's split of these shards is the only one
        for row in part:
            images = [{"bytes": b, "path": None} for b in row["images"]]
            if state["output"] == "cauldron":
                yield {"images": images, "texts": row["texts"]}
            else:
                yield {"images": images, "messages": [
                    {"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")} for p in m["content"]]}
                    for m in row["messages"]]}


def iterable_dataset(ds, num_shards: int):
    try:
        from datasets import IterableDataset
    except ImportError as e:
        raise MissingDependencyError("as_datasets needs datasets: pip install 'docsynth[hub]'") from e
    count = max(1, min(num_shards, ds.num_rows))
    state = {"cls": type(ds), "path": ds.path, "seed": ds.seed, "epoch": ds.epoch, "buffer": ds.buffer, "count": count,
             "output": ds.output}
    return IterableDataset.from_generator(_rows, features=_features(ds.output),
                                          gen_kwargs={"shards": list(range(count)), "state": state})

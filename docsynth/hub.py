"""Publishing a dataset or mixture directory to the Hugging Face Hub.

    DIR/data/train-*-VVVVVVVV.parquet  ->  REPO/data/...            (or REPO/CONFIG/... with a config)
    DIR/README.md (the card)           ->  REPO/README.md           (merged: every config listed)

Shards go up in commits of bounded size, the card last, so a repo never advertises data that is
not there yet; the card names one version's shards (VVVVVVVV: docsynth.dataset.versions) and the
commit that changes it removes the old ones: a reader sees the old dataset or the new one. A
shard already there with the same sha256 is not sent again, so an interrupted push resumes when
run again. The token comes from huggingface_hub (HF_TOKEN, or `hf auth login`), never printed.

The bytes go through huggingface_hub's create_commit (preupload, LFS, Xet); docsynth adds what
upload_folder lacks: every row checked first, commits of bounded size, the sha256 skip and the
card last. bench/push.py (0.5 GB, 8 shards, stand-in Hub on loopback, medians of 5): 0.96-1.00x
upload_folder's speed before the row check, 0.80-0.82x with it (0.3 s per 0.5 GB on 2 cores).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docsynth.dataset.cauldron import card_front, card_header, dataset_shards
from docsynth.dataset.rowcheck import RowCheck
from docsynth.dataset.versions import header_patterns, split_card
from docsynth.core.summary import Summary
from docsynth.core.errors import DocsynthError, MissingDependencyError, UsageError
from docsynth.config.push import PushOptions
from docsynth.core.files import file_sha256
from docsynth.core.secrets import redact as redact_secrets
from docsynth.core.lock import locked

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
HUB_MAIN = "main"  # the branch a new Hub repo has


@dataclass(slots=True)
class Upload:
    local: str
    path: str  # in the repo
    size: int
    sha256: str


@dataclass(slots=True)
class PushSummary(Summary):
    repo_id: str
    revision: str
    config: str | None
    url: str = ""
    created: bool = False
    dry_run: bool = False
    uploads: list[Upload] = field(default_factory=list)  # sent (or to send, in a dry run)
    skipped: list[str] = field(default_factory=list)  # already on the Hub, same sha256
    deleted: list[str] = field(default_factory=list)  # old shards of this config
    commits: list[dict] = field(default_factory=list)  # {message, files, bytes, oid}
    bytes: int = 0
    rejects: int = 0


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise MissingDependencyError("docsynth push needs huggingface_hub: pip install 'docsynth[hub]'") from e
    return huggingface_hub


def local_shards(root: Path) -> list[Path]:
    """The shards of a dataset or mixture directory (those its card names), or of any
    Cauldron-style folder of data/*.parquet, each checked from its footer and every row checked
    (docsynth.dataset.rowcheck: a repo's readers cannot skip a row); DocsynthError naming what is
    wrong otherwise."""
    shards = dataset_shards(root, messages=True)
    if (check := RowCheck().shards(shards)).count:
        raise DocsynthError(f"{root}: {check.message()}; nothing pushed. `docsynth export {root} --out DIR` "
                            "writes a copy without them")
    return shards


def local_card(root: Path, shards: list[Path]) -> str:
    """The directory's card, or for a plain Cauldron-style folder without one, a card made from
    its statistics (what docsynth stats prints), naming its shards as the Hub will hold them."""
    if (root / "README.md").exists():
        return (root / "README.md").read_text()
    from docsynth.dataset.stats import dataset_stats, stats_markdown

    s = dataset_stats(root)
    header = card_header("other", root.resolve().name, s.samples, s.bytes, [], "data/*.parquet")
    return (card_front(header) + f"\n# {root.resolve().name}\n\nA Cauldron-style dataset (`images`, and `texts` of "
            "`user` / `assistant` / `source` turns), published with `docsynth push`; this card was made from its "
            "statistics (no card was beside it). The license is not known to docsynth: set it on the Hub.\n\n"
            + stats_markdown(s))


def _sha256s(root: Path, shards: list[Path]) -> dict[str, str]:
    """Each shard's sha256: from mixture.json where it lists them (and the file is unchanged), else hashed."""
    known: dict[str, str] = {}
    try:
        manifest = json.loads((root / "mixture.json").read_text())
        known = {s["path"]: s["sha256"] for s in manifest["shards"] if (root / s["path"]).stat().st_size == s["bytes"]}
    except (OSError, ValueError, KeyError):
        pass
    out = {}
    for p in shards:
        rel = str(p.relative_to(root))
        if rel in known:
            out[rel] = known[rel]
            continue
        out[rel] = file_sha256(p)
    return out


def merge_card(remote: str | None, local: str, config: str) -> str:
    """The repo's card with this config added or replaced: configs, dataset_info and the body's
    list of configs; the rest of the remote card is kept."""
    lh, lbody = split_card(local)
    rh, rbody = split_card(remote) if remote else ({}, "")
    header = {k: v for k, v in lh.items() if k not in ("configs", "dataset_info")}
    header.update({k: v for k, v in rh.items() if k not in ("configs", "dataset_info")})
    configs = [c for c in rh.get("configs", []) if c.get("config_name") != config]
    name = Path((header_patterns(lh) or ["train-*"])[0]).name  # the local version's shards, moved under CONFIG/
    configs.append({"config_name": config, "data_files": [{"split": "train", "path": f"{config}/{name}"}]})
    header["configs"] = sorted(configs, key=lambda c: c["config_name"])
    infos = rh.get("dataset_info", [])
    infos = [infos] if isinstance(infos, dict) else infos
    mine = {"config_name": config, **{k: v for k, v in (lh.get("dataset_info") or {}).items() if k != "config_name"}}
    infos = [i for i in infos if i.get("config_name") not in (config, None)] + [mine]
    header["dataset_info"] = sorted(infos, key=lambda i: i["config_name"])
    body = rbody or lbody
    start, end = "<!-- docsynth:configs -->", "<!-- /docsynth:configs -->"
    rows = ["| config | rows |", "| --- | ---: |"] + [
        f"| `{i['config_name']}` | {sum(s.get('num_examples', 0) for s in i.get('splits', [])):,} |" for i in header["dataset_info"]]
    block = f"{start}\n## Configs\n\n" + "\n".join(rows) + "\n\nLoad one with `datasets.load_dataset(REPO, CONFIG)`.\n" + end
    if start in body and end in body:
        body = body.split(start)[0] + block + body.split(end, 1)[1]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    return card_front(header) + "\n" + body


def push(root: Path, repo_id: str, options: PushOptions | None = None, *, dry_run: bool = False,
         progress: Callable[[int, int], None] | None = None) -> PushSummary:
    """Publish DIR to the Hub (see the module docstring); progress(bytes_sent, bytes_total). No
    other docsynth command writes DIR meanwhile (its lock)."""
    with locked(root, create=False):
        return _push(root, repo_id, options or PushOptions(), dry_run, progress)


def _push(root: Path, repo_id: str, o: PushOptions, dry_run: bool, progress) -> PushSummary:
    private, revision, config = o.private, o.revision, o.config
    hf = _hub()
    _check_repo_id(repo_id)
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    hf.utils.disable_progress_bars()  # ours is on stderr; theirs would interleave
    shards = local_shards(root)
    api = HfApi()
    s = PushSummary(repo_id, revision, config, dry_run=dry_run)
    if not dry_run and not hf.get_token():
        raise DocsynthError("no Hugging Face token: set HF_TOKEN, or log in once with `hf auth login`")
    prefix = config or "data"
    try:
        try:
            api.repo_info(repo_id, repo_type=REPO_TYPE)
            remote = {f.path: f for f in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=revision, recursive=True)
                      if hasattr(f, "size")}
        except RevisionNotFoundError:
            remote = {}
            if not dry_run:
                api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
        except RepositoryNotFoundError:
            remote = {}
            s.created = True
            if not dry_run:
                api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
                if revision != HUB_MAIN:
                    api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
        s.url = f"{api.endpoint}/datasets/{repo_id}" + (f"/tree/{revision}" if revision != HUB_MAIN else "")
        shas = _sha256s(root, shards)
        for p in shards:
            dest = f"{prefix}/{p.name}"
            there = remote.get(dest)
            sha = shas[str(p.relative_to(root))]
            if there is not None and there.lfs is not None and there.lfs.sha256 == sha:
                s.skipped.append(dest)
            else:
                s.uploads.append(Upload(str(p), dest, p.stat().st_size, sha))
        wanted = {f"{prefix}/{p.name}" for p in shards}
        s.deleted = sorted(path for path in remote if path.startswith(f"{prefix}/train-") and path not in wanted)
        card = local_card(root, shards)
        old_card = _remote_card(api, repo_id, revision, remote)
        if config:
            card = merge_card(old_card, card, config)
        card_changed = old_card != card
        total = sum(u.size for u in s.uploads)
        batches = _batches(s.uploads, o.commit_files, int(o.commit_bytes))
        if dry_run:
            s.commits = [{"message": f"shards {i + 1}/{len(batches)}", "files": len(b), "bytes": sum(u.size for u in b)}
                         for i, b in enumerate(batches)]
            if s.deleted or card_changed:
                s.commits.append({"message": "card", "files": 1 + len(s.deleted), "bytes": len(card.encode())})
            s.bytes = total
            return s
        sent = 0
        for i, batch in enumerate(batches):
            what = f"{config + ': ' if config else ''}shards {batch[0].path.rsplit('/', 1)[1]}..{batch[-1].path.rsplit('/', 1)[1]}"
            info = api.create_commit(repo_id, repo_type=REPO_TYPE, revision=revision,
                                     operations=[_add(CommitOperationAdd, u) for u in batch],
                                     commit_message=f"docsynth push: {what} ({i + 1}/{len(batches)})")
            sent += sum(u.size for u in batch)
            s.commits.append({"message": f"shards {i + 1}/{len(batches)}", "files": len(batch),
                              "bytes": sum(u.size for u in batch), "oid": info.oid})
            if progress:
                progress(sent, total)
        if s.deleted or card_changed:
            ops = [CommitOperationDelete(p) for p in s.deleted] + [CommitOperationAdd("README.md", card.encode())]
            info = api.create_commit(repo_id, repo_type=REPO_TYPE, revision=revision, operations=ops,
                                     commit_message=f"docsynth push: dataset card{' (' + config + ')' if config else ''}"
                                     + (f", {len(s.deleted)} old shards removed" if s.deleted else ""))
            s.commits.append({"message": "card", "files": len(ops), "bytes": len(card.encode()), "oid": info.oid})
        s.bytes = sent
        return s
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        hint = " (is the token allowed to write to it?)" if status in (401, 403) else ""
        raise DocsynthError(f"the Hub refused {repo_id}: HTTP {status}: {_server_message(e)}{hint}; "
                            "run the same command again to resume: shards already there are not sent again") from None
    except Exception as e:  # no answer at all (dead endpoint, DNS, reset): OSError, or the HTTP client's own
        local = isinstance(e, OSError) and getattr(e, "filename", None)  # a local file: the CLI names it
        if local or not (isinstance(e, OSError) or type(e).__module__.split(".")[0].startswith("httpx")):
            raise
        raise DocsynthError(f"cannot reach the Hub at {redact(api.endpoint)} for {repo_id}: {type(e).__name__}: {redact(str(e))}; "
                            "run the same command again to resume") from None


def _add(op_class, u: Upload):
    """The commit operation, with the sha256 we already know (huggingface_hub would read the file again)."""
    op = op_class(u.path, u.local)
    op.upload_info.sha256 = bytes.fromhex(u.sha256)
    return op


def _server_message(e) -> str:
    msg = getattr(e, "server_message", None) or str(e).splitlines()[0]
    return redact(msg[:300])


def redact(text: str) -> str:
    """Text for a person with the Hub token (the one held, or anything shaped like one) and any
    URL credentials replaced: a server may echo the request's Authorization header in its error
    body, and HF_ENDPOINT may carry user:token@ (docsynth.core.secrets)."""
    return redact_secrets(text, _token())


def _token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # not installed, or no token: nothing of it can be in the text
        return None


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise UsageError(f"--repo-id '{repo_id}': a dataset repo is ORG/NAME")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UsageError(f"--repo-id '{repo_id}' is not a Hub repo id: {str(e).splitlines()[0]}") from None


def _batches(uploads: list[Upload], files: int, nbytes: int) -> list[list[Upload]]:
    out: list[list[Upload]] = []
    for u in uploads:
        if not out or len(out[-1]) >= files or sum(x.size for x in out[-1]) + u.size > nbytes:
            out.append([])
        out[-1].append(u)
    return out


def _remote_card(api, repo_id: str, revision: str, remote: dict) -> str | None:
    if "README.md" not in remote:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = api.hf_hub_download(repo_id, "README.md", repo_type=REPO_TYPE, revision=revision, cache_dir=tmp)
        return Path(path).read_text()

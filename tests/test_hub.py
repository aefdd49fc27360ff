"""`docsynth push` with the real huggingface_hub client, run as a user runs it (the CLI in a
subprocess), against a stand-in Hub on loopback (HF_ENDPOINT): the repo, files, commit sizes and
card that arrive, configs, branches, a resume after a failed commit, and no token in any output."""

from __future__ import annotations

import fnmatch
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docsynth.mixing.mixer import run_mix
from docsynth.hub import merge_card
from docsynth.config.mixture import Mixture
from tests.dataset.mixsources import cauldron_source
from tests.hubserver import Hub

TOKEN = "hf_docsynthTESTtoken0123456789abcdef"


@pytest.fixture(scope="module")
def mixtures(tmp_path_factory) -> dict[str, Path]:
    """Two small mixtures: 'docs' in 5 shards of about 40 KB, 'charts' in 2."""
    root = tmp_path_factory.mktemp("push")
    cauldron_source(root, "s", 100, images=3)
    cauldron_source(root, "t", 30, images=3)
    out = {}
    for name, src, rows in (("docs", "s", 20), ("charts", "t", 15)):
        run_mix(Mixture.model_validate({"name": name, "shard_rows": rows, "sources": [
            {"name": src, "path": str(root / src), "repeat": 1}]}), root / name)
        out[name] = root / name
    return out


def docsynth(hub: Hub, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HOME": str(Path(hub.home)), "HF_HUB_DISABLE_IMPLICIT_TOKEN": "", "NO_COLOR": "1"}
    env.pop("HF_TOKEN", None)
    env.pop("HF_HUB_OFFLINE", None)  # set by the engine tests of this session; a push needs the network
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "docsynth.cli", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def hub(tmp_path):
    with Hub(TOKEN) as h:
        h.home = tmp_path / "hf-home"  # no login stored here: the token comes from HF_TOKEN alone
        yield h


def no_token_in(res: subprocess.CompletedProcess) -> None:
    assert TOKEN not in res.stdout and TOKEN not in res.stderr
    assert TOKEN[:12] not in res.stdout + res.stderr


def test_push_creates_the_repo_and_sends_shards_in_bounded_commits_then_the_card(hub, mixtures):
    mix = mixtures["docs"]
    sizes = {p.name: p.stat().st_size for p in (mix / "data").glob("*.parquet")}
    limit = max(sizes.values()) * 2 + 10  # two shards per commit at most, by bytes
    res = docsynth(hub, "-vv", "push", str(mix), "--repo-id", "org/docs", "--private", "--commit-bytes", str(limit),
                   "--json")
    assert res.returncode == 0, res.stderr
    no_token_in(res)
    out = json.loads(res.stdout)
    assert out["created"] and len(out["uploads"]) == 5 and out["skipped"] == []
    files = hub.files("org/docs")
    assert sorted(files) == [".gitattributes", "README.md", *sorted(f"data/{n}" for n in sizes)]
    for name, size in sizes.items():
        assert hub.read("org/docs", f"data/{name}") == (mix / "data" / name).read_bytes()
        assert files[f"data/{name}"]["lfs"] and files[f"data/{name}"]["size"] == size
    assert hub.repos["org/docs"]["private"]
    commits = [c for c in hub.commits if c["repo"] == "org/docs"]
    shard_commits = commits[:-1]
    assert [len(c["files"]) for c in shard_commits] == [2, 2, 1]
    assert all(sum(size for _, size, _ in c["files"]) <= limit for c in shard_commits)
    assert [p for p, _, _ in commits[-1]["files"]] == ["README.md"]  # the card comes last
    assert hub.read("org/docs", "README.md") == (mix / "README.md").read_bytes()
    assert all(r["auth"] for r in hub.requests if r["path"].startswith("/api/") and "commit" in r["path"])
    # Nothing changed: a second push sends nothing and makes no commit.
    before = len(hub.commits)
    res = docsynth(hub, "push", str(mix), "--repo-id", "org/docs", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["skipped"] == sorted(f"data/{n}" for n in sizes)
    assert len(hub.commits) == before


def test_a_failed_commit_is_resumed_without_resending(hub, mixtures):
    mix = mixtures["docs"]
    hub.fail_commits = {2}
    res = docsynth(hub, "push", str(mix), "--repo-id", "org/resume", "--commit-files", "2")
    assert res.returncode == 1 and "HTTP 500" in res.stderr and "run the same command again to resume" in res.stderr
    assert "Traceback" not in res.stderr
    no_token_in(res)
    committed = {p for c in hub.commits for p, _, _ in c["files"]}
    assert len(committed) == 2  # the first commit landed, the second did not
    sent_before = list(hub.uploads)
    res = docsynth(hub, "push", str(mix), "--repo-id", "org/resume", "--commit-files", "2", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out["skipped"]) == sorted(committed) and len(out["uploads"]) == 3
    oids = [oid for oid, _ in hub.uploads]
    assert len(oids) == len(set(oids)) == 5  # every shard's bytes crossed the wire exactly once
    assert len(hub.uploads) - len(sent_before) == 1  # the failed commit's two uploads were not re-sent
    assert sorted(p for p in hub.files("org/resume") if p.startswith("data/")) == sorted(
        f"data/{p.name}" for p in (mix / "data").glob("*.parquet"))


def test_configs_of_one_repo_like_the_cauldron_and_old_shards_go(hub, mixtures, tmp_path):
    for name in ("docs", "charts"):
        res = docsynth(hub, "push", str(mixtures[name]), "--repo-id", "org/cauldron", "--config-name", name)
        assert res.returncode == 0, res.stderr
    files = hub.files("org/cauldron")
    assert len([p for p in files if p.startswith("docs/train-")]) == 5
    assert len([p for p in files if p.startswith("charts/train-")]) == 2
    header = yaml.safe_load(hub.read("org/cauldron", "README.md").decode().split("---")[1])
    assert [c["config_name"] for c in header["configs"]] == ["charts", "docs"]
    for c in header["configs"]:  # each names its version's shards, and only those
        [pattern] = [d["path"] for d in c["data_files"] if d["split"] == "train"]
        assert re.fullmatch(rf"{c['config_name']}/train-\*-[0-9a-f]{{8}}\.parquet", pattern)
        assert fnmatch.filter(files, pattern) == [p for p in files if p.startswith(c["config_name"] + "/")]
    assert [(i["config_name"], i["splits"][0]["num_examples"]) for i in header["dataset_info"]] == [("charts", 30), ("docs", 100)]
    card = hub.read("org/cauldron", "README.md").decode()
    assert "| `charts` | 30 |" in card and "| `docs` | 100 |" in card
    # The docs config re-mixed into 2 shards: the 5 old ones are removed with the new card.
    redo = tmp_path / "docs2"
    run_mix(Mixture.model_validate({"name": "docs", "shard_rows": 60, "sources": [
        {"name": "s", "path": str(mixtures["docs"].parent / "s"), "repeat": 1}]}), redo)
    res = docsynth(hub, "push", str(redo), "--repo-id", "org/cauldron", "--config-name", "docs", "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["deleted"]) == 5
    files = hub.files("org/cauldron")
    assert sorted(re.sub(r"-[0-9a-f]{8}\.parquet$", ".parquet", p) for p in files if p.startswith("docs/")) == [
        "docs/train-00000-of-00002.parquet", "docs/train-00001-of-00002.parquet"]
    header = yaml.safe_load(hub.read("org/cauldron", "README.md").decode().split("---")[1])
    [docs] = [c for c in header["configs"] if c["config_name"] == "docs"]
    assert len(fnmatch.filter(files, docs["data_files"][0]["path"])) == 2
    assert len([p for p in files if p.startswith("charts/")]) == 2


def test_a_branch_a_dry_run_and_no_token(hub, mixtures):
    res = docsynth(hub, "push", str(mixtures["charts"]), "--repo-id", "org/br", "--dry-run", "--json")
    assert res.returncode == 0 and "org/br" not in hub.repos  # nothing sent
    plan = json.loads(res.stdout)
    assert plan["dry_run"] and plan["created"] and len(plan["uploads"]) == 2 and plan["commits"][-1]["message"] == "card"
    res = docsynth(hub, "push", str(mixtures["charts"]), "--repo-id", "org/br", "--dry-run")
    assert "dry run" in res.stdout and "would send" in res.stdout
    res = docsynth(hub, "push", str(mixtures["charts"]), "--repo-id", "org/br", "--revision", "v1")
    assert res.returncode == 0, res.stderr
    assert sorted(p for p in hub.files("org/br", "v1") if p.startswith("data/")) and not any(
        p.startswith("data/") for p in hub.files("org/br", "main"))
    res = docsynth(hub, "push", str(mixtures["charts"]), "--repo-id", "org/x", token=None)
    assert res.returncode == 1 and "no Hugging Face token: set HF_TOKEN" in res.stderr
    res = docsynth(hub, "push", str(mixtures["charts"]), "--repo-id", "org/x", token="hf_wrong")
    assert res.returncode == 1 and "HTTP 401" in res.stderr and "hf_wrong" not in res.stderr + res.stdout


def test_a_plain_cauldron_folder_is_pushed_with_a_card_made_from_its_statistics(hub, tmp_path):
    """What mix, stats and preview accept, push takes too: data/*.parquet and no card."""
    import yaml

    src = cauldron_source(tmp_path, "plain", 7, shards=2)
    assert not (src / "README.md").exists()
    res = docsynth(hub, "push", str(src), "--repo-id", "org/plain", "--json")
    assert res.returncode == 0, res.stderr
    files = hub.files("org/plain")
    shards = sorted(p.name for p in (src / "data").glob("*.parquet"))
    assert sorted(files) == [".gitattributes", "README.md", *(f"data/{n}" for n in shards)]
    card = hub.read("org/plain", "README.md").decode()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
    assert header["dataset_info"]["splits"][0]["num_examples"] == 7
    assert "made from its statistics" in card and "## Statistics" in card and "7 samples" in card
    assert not (src / "README.md").exists()  # the folder itself is left as it was


def test_push_errors_are_messages(hub, tmp_path):
    res = docsynth(hub, "push", str(tmp_path), "--repo-id", "org/x")
    assert res.returncode == 1 and "holds no dataset shards" in res.stderr
    hub.__exit__()  # the Hub goes away
    cauldron_source(tmp_path, "s", 3)
    run_mix(Mixture.model_validate({"sources": [{"name": "s", "path": str(tmp_path / "s"), "repeat": 1}]}), tmp_path / "m")
    res = docsynth(hub, "push", str(tmp_path / "m"), "--repo-id", "org/x")
    assert res.returncode == 1 and "cannot reach the Hub" in res.stderr and "Traceback" not in res.stderr
    # credentials in the endpoint URL are never printed, nor logged with -v (docsynth.core.secrets)
    secret = "hf_inTheURL0123456789"
    env = {**os.environ, "HF_ENDPOINT": hub.url.replace("://", f"://someone:{secret}@"), "HF_TOKEN": TOKEN,
           "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(Path(hub.home))}
    env.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "-vv", "push", str(tmp_path / "m"), "--repo-id", "org/x"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 1 and "cannot reach the Hub at http://[redacted]@" in res.stderr, res.stderr[-2000:]
    assert secret not in res.stderr and "someone" not in res.stderr


def test_merge_card_keeps_the_rest_of_the_repo_card():
    remote = "---\nlicense: cc-by-4.0\nconfigs:\n- config_name: a\n  data_files: a/*\n---\n\n# Mine\n\nHand-written text.\n"
    local = "---\nlicense: other\ndataset_info:\n  features: []\n  splits:\n  - {name: train, num_examples: 7}\n---\n\n# b\n"
    card = merge_card(remote, local, "b")
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "cc-by-4.0" and [c["config_name"] for c in header["configs"]] == ["a", "b"]
    assert "Hand-written text." in card and "| `b` | 7 |" in card
    again = merge_card(card, local, "b")
    assert again.count("<!-- docsynth:configs -->") == 1



def test_a_token_the_hub_echoes_in_an_error_is_redacted(hub, mixtures):
    hub.fail_commits, hub.echo_auth = {1}, True
    res = docsynth(hub, "push", str(mixtures["docs"]), "--repo-id", "org/echo")
    assert res.returncode == 1 and "HTTP 500" in res.stderr and "Authorization: Bearer [redacted]" in res.stderr, res.stderr
    no_token_in(res)

"""A stand-in for the Hugging Face Hub on loopback, for tests: the endpoints huggingface_hub's
HfApi uses to create a dataset repo and branches, list its tree, upload LFS objects (the basic
transfer), commit, and download a file (byte ranges too), and those HfFileSystem (hf:// URLs)
adds: paths-info and folder-by-folder tree listings. State is in memory; every request is recorded, and
failures can be injected (`fail_commits`: which commit attempts get a 500)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


# The Hub's dataset card metadata rules for the fields docsynth writes (the dataset card spec:
# huggingface.co/docs/hub/datasets-cards): enumerated values, and the types of the others.
CREATORS = {"crowdsourced", "expert-generated", "found", "machine-generated", "no-annotation", "other"}
ENUMS = {"annotations_creators": CREATORS, "language_creators": CREATORS,
         "multilinguality": {"monolingual", "multilingual", "translation", "other"},
         "size_categories": {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                             "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T", "other"},
         "task_categories": {"visual-question-answering", "image-text-to-text", "document-question-answering",
                             "question-answering", "image-to-text", "text-generation", "other"}}
LICENSES = {"other", "unknown", "apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc0-1.0", "odc-by"}


def card_errors(content: str) -> list[str]:
    """What the Hub would refuse in a card's YAML header."""
    import yaml

    if not content.startswith("---") or content.count("---") < 2:
        return ["no YAML header"]
    try:
        header = yaml.safe_load(content.split("---")[1])
    except yaml.YAMLError as e:
        return [f"invalid YAML: {e}"]
    if not isinstance(header, dict):
        return ["the header is not a mapping"]
    errors = []
    for key, allowed in ENUMS.items():
        values = header.get(key, [])
        for v in values if isinstance(values, list) else [values]:
            if v not in allowed:
                errors.append(f'"{key}" with value "{v}" is not valid')
    lic = header.get("license")
    for v in lic if isinstance(lic, list) else [lic] if lic is not None else []:
        if v not in LICENSES:
            errors.append(f'"license" with value "{v}" is not valid')
    for key in ("source_datasets", "language", "tags"):
        if key in header and not (isinstance(header[key], list) and all(isinstance(x, str) for x in header[key])):
            errors.append(f'"{key}" must be a list of strings')
    if "pretty_name" in header and not isinstance(header["pretty_name"], str):
        errors.append('"pretty_name" must be a string')
    for c in header.get("configs", []):
        if not isinstance(c, dict) or "config_name" not in c or "data_files" not in c:
            errors.append('"configs" entries need config_name and data_files')
    return errors


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, dict] = {}  # repo_id -> {private, branches: {name: {"commit", "files"}}}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[dict] = []  # method, path, auth ok
        self.uploads: list[tuple[str, int]] = []  # LFS objects received (oid, size)
        self.commits: list[dict] = []  # {repo, branch, message, files: [(path, size, lfs)], deleted: [...]}
        self.fail_commits: set[int] = set()  # commit attempts (1, 2, ...) answered with a 500
        self.echo_auth = False  # that 500 quotes the request's Authorization header, as careless servers do
        self.commit_attempts = 0
        self.cards_validated: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, branch: str = "main") -> dict[str, dict]:
        return self.repos[repo_id]["branches"][branch]["files"]

    def read(self, repo_id: str, path: str, branch: str = "main") -> bytes:
        f = self.files(repo_id, branch)[path]
        return self.lfs[f["sha256"]] if f["lfs"] else f["content"]


def _handler(hub: Hub):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            return self.body

        def _send(self, code: int, obj=None, headers: dict | None = None, raw: bytes | None = None, head=False) -> None:
            data = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _err(self, code: int, msg: str, kind: str | None = None) -> None:
            self._send(code, {"error": msg}, {"X-Error-Code": kind} if kind else None)

        def _authed(self) -> bool:
            return self.headers.get("Authorization") == f"Bearer {hub.token}"

        def _route(self, method: str) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(n) if n else b""  # always read: the connection is kept alive
            url = urlparse(self.path)
            path = unquote(url.path)
            with hub.lock:
                hub.requests.append({"method": method, "path": path, "auth": self._authed()})
            parts = path.strip("/").split("/")
            try:
                if method == "POST" and path == "/api/validate-yaml":  # the card's YAML header
                    content = json.loads(self._body())["content"]
                    hub.cards_validated.append(content)
                    errors = card_errors(content)
                    return self._send(400 if errors else 200, {"errors": [{"message": e} for e in errors],
                                                               "warnings": []})
                if method == "POST" and path == "/api/repos/create":
                    return self._create(json.loads(self._body()))
                if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
                    repo_id = "/".join(parts[2:4])
                    rest = parts[4:]
                    return self._api(method, repo_id, rest, parse_qs(url.query))
                if parts[0] == "datasets" and len(parts) >= 3 and parts[2].endswith(".git"):
                    return self._lfs_batch(f"{parts[1]}/{parts[2][:-4]}")
                if parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
                    return self._resolve(method, f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]))
                if method == "PUT" and parts[0] == "lfs-upload":
                    return self._lfs_put(parts[1])
                if method == "POST" and parts[0] == "lfs-verify":
                    return self._send(200, {})
            except Exception as e:  # a bug in the stand-in shows as a 500 with its message
                return self._err(500, f"stand-in hub error: {type(e).__name__}: {e}")
            self._err(404, f"no route {method} {path}")

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_HEAD(self):
            self._route("HEAD")

        # ----- repos -------------------------------------------------------------------------
        def _create(self, body: dict) -> None:
            if not self._authed():
                return self._err(401, "Invalid credentials in Authorization header")
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            with hub.lock:
                if repo_id in hub.repos:
                    return self._err(409, "You already created this dataset repo")
                attrs = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
                hub.repos[repo_id] = {"private": body.get("visibility") == "private" or bool(body.get("private")),
                                      "branches": {"main": {"commit": uuid.uuid4().hex + "00000000",
                                                            "files": {".gitattributes": self._regular(attrs)}}}}
            self._send(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})

        @staticmethod
        def _regular(data: bytes) -> dict:
            return {"size": len(data), "oid": git_sha1(data), "lfs": False, "content": data, "sha256": None}

        def _repo(self, repo_id: str):
            repo = hub.repos.get(repo_id)
            if repo is None or (repo["private"] and not self._authed()):
                self._err(404, "Repository not found", "RepoNotFound")
                return None
            return repo

        def _api(self, method: str, repo_id: str, rest: list[str], query: dict) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return
            if not rest or rest[0] == "revision":
                branch = rest[1] if len(rest) > 1 else "main"
                if branch not in repo["branches"]:
                    return self._err(404, "Invalid rev id", "RevisionNotFound")
                b = repo["branches"][branch]
                return self._send(200, {"id": repo_id, "sha": b["commit"], "private": repo["private"],
                                        "siblings": [{"rfilename": p} for p in b["files"]]})
            if rest[0] == "branch" and method == "POST":
                if not self._authed():
                    return self._err(401, "Invalid credentials")
                if rest[1] in repo["branches"]:
                    return self._err(409, "Branch already exists")
                main = repo["branches"]["main"]
                repo["branches"][rest[1]] = {"commit": main["commit"], "files": dict(main["files"])}
                return self._send(200, {})
            branch = rest[1] if len(rest) > 1 else "main"
            if branch not in repo["branches"]:
                return self._err(404, "Invalid rev id", "RevisionNotFound")
            files = repo["branches"][branch]["files"]
            if rest[0] == "tree":
                prefix = "/".join(rest[2:])
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                return self._send(200, self._tree(files, prefix, recursive))
            if rest[0] == "paths-info" and method == "POST":
                wanted = parse_qs(self._body().decode()).get("paths", [])
                if not wanted and self.headers.get("Content-Type", "").startswith("application/json"):
                    wanted = json.loads(self._body()).get("paths", [])
                out = []
                for p in wanted:
                    p = p.strip("/")
                    if p in files:
                        out.append(self._entry(p, files[p]))
                    elif any(q.startswith(p + "/") for q in files) or p == "":
                        out.append({"type": "directory", "path": p, "oid": git_sha1(p.encode())})
                return self._send(200, out)
            if rest[0] == "preupload":
                body = json.loads(self._body())
                out = []
                for f in body["files"]:
                    lfs = f["path"].endswith(".parquet") or f["size"] > 10_000_000
                    there = files.get(f["path"])
                    out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                                "oid": (there["sha256"] if there["lfs"] else there["oid"]) if there else None})
                return self._send(200, {"files": out, "commitOid": repo["branches"][branch]["commit"]})
            if rest[0] == "commit" and method == "POST":
                return self._commit(repo_id, repo, branch, self._body())
            self._err(404, f"no route for {rest}")

        @staticmethod
        def _entry(p: str, f: dict) -> dict:
            return {"type": "file", "path": p, "size": f["size"], "oid": f["oid"],
                    **({"lfs": {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}} if f["lfs"] else {})}

        def _tree(self, files: dict, prefix: str, recursive: bool) -> list[dict]:
            """Files under prefix (all of them, recursive), else its direct files and folders."""
            prefix = prefix.strip("/")
            under = {p: f for p, f in sorted(files.items()) if not prefix or p.startswith(prefix + "/")}
            if recursive:
                return [self._entry(p, f) for p, f in under.items()]
            out, folders = [], set()
            for p, f in under.items():
                rest = p[len(prefix) + 1:] if prefix else p
                if "/" in rest:
                    folders.add((f"{prefix}/" if prefix else "") + rest.split("/")[0])
                else:
                    out.append(self._entry(p, f))
            return out + [{"type": "directory", "path": d, "oid": git_sha1(d.encode())} for d in sorted(folders)]

        def _commit(self, repo_id: str, repo: dict, branch: str, body: bytes) -> None:
            if not self._authed():
                return self._err(401, "Invalid credentials")
            with hub.lock:
                hub.commit_attempts += 1
                if hub.commit_attempts in hub.fail_commits:
                    echo = f" (request had Authorization: {self.headers.get('Authorization')})" if hub.echo_auth else ""
                    return self._err(500, "Internal Error - We're working hard to fix this as soon as possible!" + echo)
            lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
            files = dict(repo["branches"][branch]["files"])
            record = {"repo": repo_id, "branch": branch, "message": "", "files": [], "deleted": []}
            for x in lines:
                k, v = x["key"], x["value"]
                if k == "header":
                    record["message"] = v["summary"]
                elif k == "file":
                    data = base64.b64decode(v["content"])
                    files[v["path"]] = self._regular(data)
                    record["files"].append((v["path"], len(data), False))
                elif k == "lfsFile":
                    if v["oid"] not in hub.lfs:
                        return self._err(422, f"LFS object {v['oid']} was never uploaded")
                    files[v["path"]] = {"size": v["size"], "oid": git_sha1(b"pointer" + v["oid"].encode()), "lfs": True,
                                        "sha256": v["oid"], "content": None}
                    record["files"].append((v["path"], v["size"], True))
                elif k in ("deletedFile", "deletedFolder"):
                    gone = [p for p in files if p == v["path"] or p.startswith(v["path"].rstrip("/") + "/")]
                    if not gone:
                        return self._err(404, "A file with this name doesn't exist", "EntryNotFound")
                    for p in gone:
                        del files[p]
                    record["deleted"] += gone
            oid = uuid.uuid4().hex + "00000000"
            with hub.lock:
                repo["branches"][branch] = {"commit": oid, "files": files}
                hub.commits.append(record)
            self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

        # ----- LFS ------------------------------------------------------------------------------
        def _lfs_batch(self, repo_id: str) -> None:
            if self._repo(repo_id) is None:
                return
            if not self._authed():
                return self._err(401, "Invalid credentials")
            body = json.loads(self._body())
            objects = []
            for o in body["objects"]:
                if o["oid"] in hub.lfs:
                    objects.append({"oid": o["oid"], "size": o["size"]})
                else:
                    objects.append({"oid": o["oid"], "size": o["size"], "authenticated": True, "actions": {
                        "upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}"},
                        "verify": {"href": f"{hub.url}/lfs-verify"}}})
            self._send(200, {"transfer": "basic", "objects": objects})

        def _lfs_put(self, oid: str) -> None:
            data = self._body()
            if hashlib.sha256(data).hexdigest() != oid:
                return self._err(400, "sha256 mismatch")
            with hub.lock:
                hub.lfs[oid] = data
                hub.uploads.append((oid, len(data)))
            self._send(200, {})

        def _resolve(self, method: str, repo_id: str, rev: str, path: str) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return
            b = repo["branches"].get(rev)
            f = b["files"].get(path) if b else None
            if f is None:
                return self._err(404, "Entry not found", "EntryNotFound")
            data = hub.lfs[f["sha256"]] if f["lfs"] else f["content"]
            headers = {"X-Repo-Commit": b["commit"], "ETag": f'"{f["oid"]}"', "Accept-Ranges": "bytes"}
            rng = self.headers.get("Range")
            if rng and method == "GET":  # HfFileSystem reads by ranges
                start, _, end = rng.removeprefix("bytes=").partition("-")
                start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
                if start >= len(data):
                    return self._send(416, raw=b"", headers={"Content-Range": f"bytes */{len(data)}"})
                return self._send(206, raw=data[start:end + 1],
                                  headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
            self._send(200, raw=data, head=method == "HEAD", headers=headers)

    return H

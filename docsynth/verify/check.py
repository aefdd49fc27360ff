"""One sample's checks, as the verify stage and `docsynth verify --pairs` both run them: the round
trip (its questions answered from its text alone, compared by docsynth.core.agree) and, where
asked, the judge's ratings. Rows are dicts with sample_id, template, text, questions, answers,
and with verify.vision their page images (bytes): both requests then carry the pages, fitted to
generate.max_image_pixels, and the judge rates the visual axes too.

The round trips of a batch go to the backend first and the judge's requests after them: both
start with the same document, so the judge's prompts find it in the engine's prefix cache.
"""

from __future__ import annotations

from docsynth.core.agree import agreement
from docsynth.core.inert import Inert
from docsynth.core.recipe import VerifyConfig
from docsynth.core.records import RATED_AXES, Verdicts
from docsynth.generate.backends import Completion
from docsynth.generate.images import fit_image
from docsynth.generate.parse import ParseError
from docsynth.generate.samples import NO_TEXT, derive_seed
from docsynth.generate.session import Session
from docsynth.verify.ask import NOT_STATED, answer_template, answers_schema, parse_answers, verify_request
from docsynth.verify.judge import judge_axes, judge_request, judge_template, parse_ratings


class Checker:
    def __init__(self, cfg: VerifyConfig, seed: int, session: Session, vision: bool = False, text: str = "layer",
                 max_image_pixels: int = 0) -> None:
        """vision, text, max_image_pixels: the verify section's, resolved against generate's."""
        self.cfg, self.seed, self.session = cfg, seed, session
        self.vision, self.text, self.max_pixels = vision, text, max_image_pixels
        self.answer, self.judge = answer_template(), judge_template(vision)
        self.inert = Inert(getattr(session.tokens, "specials", ()))
        # Tokens of this process's requests, by kind (answer: the round trip; judge), with the prompt
        # tokens the engine's prefix cache served (where the backend says): bench/verify.py's figures.
        self.tokens = {k: {"requests": 0, "prompt": 0, "cached": 0, "output": 0} for k in ("answer", "judge")}

    def check(self, rows: list[dict]) -> list[Verdicts]:
        """Verdicts for each row, in order (one backend call per kind of request)."""
        asked = [r for r in rows if r["template"] not in self.cfg.skip_templates and r["questions"]]
        chunks = [(r, part) for r in asked for part in _parts(len(r["questions"]), self.cfg.questions_per_request)]
        trips = self._complete([verify_request(
            self.answer, self.inert, self._document(r), r["questions"][part],
            derive_seed(self.seed, f"verify:{r['sample_id']}" + (f":{part.start}" if part.start else "")),
            answers_schema(len(r["questions"][part]), self.cfg.max_answer_chars) if self.cfg.guided_json else None,
            self._images(r)) for r, part in chunks], self.cfg.sampling, "answer")
        trip: dict[str, list[Completion]] = {}
        for (r, _), reply in zip(chunks, trips):
            trip.setdefault(r["sample_id"], []).append(reply)
        rated = [r for r in rows if r["questions"]] if self.cfg.judge else []
        judged = dict(zip((r["sample_id"] for r in rated), self._complete([judge_request(
            self.judge, self.inert, self._document(r), r["questions"], r["answers"],
            derive_seed(self.seed, f"judge:{r['sample_id']}"), self.cfg.guided_json, self._images(r)) for r in rated],
            self.cfg.judge_sampling, "judge")))
        return [rate(round_trip(r, trip.get(r["sample_id"]), self.session.model, self.cfg.min_f1,
                                self.cfg.questions_per_request),
                     judged.get(r["sample_id"]), judge_axes(self.vision)) for r in rows]

    def _document(self, row: dict) -> str:
        return NO_TEXT if self.vision and self.text == "none" else row["text"]

    def _images(self, row: dict) -> list[dict] | None:
        """The row's pages as chat image parts (None without vision); an image that cannot be
        read is left out (the pair is still checked, against what remains)."""
        if not self.vision:
            return None
        parts = []
        for data in row.get("images") or []:
            try:
                parts.append(fit_image(data, self.max_pixels).part())
            except ValueError:
                continue
        return parts

    def _complete(self, requests, sampling, kind: str) -> list[Completion]:
        replies = self.session.backend.complete(requests, sampling) if requests else []
        t = self.tokens[kind]
        for c in replies:
            t["requests"] += 1
            t["prompt"] += c.prompt_tokens
            t["cached"] += c.cached_tokens
            t["output"] += c.output_tokens
        return replies


def _parts(n: int, per: int | None) -> list[slice]:
    """A sample's questions in the requests that ask them: all in one (per None), else per at a time."""
    per = per or n
    return [slice(i, min(i + per, n)) for i in range(0, n, per)]


def round_trip(row: dict, replies: list[Completion] | None, model: str, min_f1: float,
               per: int | None = None) -> Verdicts:
    """One candidate's round-trip verdicts from the verifier's replies, one per request of its
    questions (None: its template is not verified); not rated yet (see rate). A reply that
    cannot be read leaves its own questions unchecked, not the sample's others."""
    n = len(row["questions"])
    unrated = {**{a: [None] * n for a in RATED_AXES}, "judge_reasons": [None] * n, "judge_raw": ""}
    if replies is None:
        return Verdicts(row["sample_id"], row["template"], [None] * n, [None] * n, ["skipped template"] * n,
                        [f"template {row['template']} is not verified (verify.skip_templates)"] * n, model, 0, 0, "",
                        **unrated)
    reanswers, verified, how, reasons = [], [], [], []
    for part, reply in zip(_parts(n, per), replies):
        k = part.stop - part.start
        try:
            if reply.error is not None:
                raise ParseError(f"backend: {reply.error}")
            answers = parse_answers(reply.text or "", k)
        except ParseError as e:
            reanswers += [None] * k
            verified += [None] * k
            how += ["backend error" if reply.error is not None else "unparsable reply"] * k
            reasons += [f"verifier: {e}"] * k
            continue
        agreements = [agreement(a, r or NOT_STATED, min_f1) for a, r in zip(row["answers"][part], answers)]
        reanswers += answers
        verified += [g.agree for g in agreements]
        how += [g.how for g in agreements]
        reasons += [g.reason for g in agreements]
    return Verdicts(row["sample_id"], row["template"], reanswers, verified, how, reasons, model,
                    sum(c.prompt_tokens for c in replies), sum(c.output_tokens for c in replies),
                    "\n".join(c.text or "" for c in replies), **unrated)


def rate(v: Verdicts, reply: Completion | None, axes: tuple[str, ...]) -> Verdicts:
    """v with the judge's scores and reasons (None: no judge ran). A reply that cannot be read
    leaves the pairs unrated, its reason in judge_reasons: a guessed score would be worse."""
    if reply is None:
        return v
    n = len(v.verified)
    v.prompt_tokens += reply.prompt_tokens
    v.output_tokens += reply.output_tokens
    v.judge_raw = reply.text or ""
    try:
        if reply.error is not None:
            raise ParseError(f"backend: {reply.error}")
        ratings = parse_ratings(v.judge_raw, n, axes)
    except ParseError as e:
        v.judge_reasons = [f"judge: {e}"] * n
        return v
    for axis in axes:
        setattr(v, axis, [r.scores[axis] for r in ratings])
    v.judge_reasons = [r.reason for r in ratings]
    return v

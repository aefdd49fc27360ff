"""One sample's checks, as the verify stage and `docsynth verify --pairs` both run them (verify.
checks): the round trip (its questions answered from its text alone, compared by
docsynth.core.agree), the choice among the page's candidate answers (docsynth.verify.choice),
sampled answers voted, the evidence of an answer-first pair and the question's answer type
(docsynth.core.spans, docsynth.core.qatype); and, where asked, the judge's ratings. A pair is
verified when every check that applies to it agrees, unverified when one disagrees (its `how`
names the first: evidence, type, choice, vote, or the round trip's rule). Rows are dicts with sample_id, template, text, questions, answers,
and with verify.vision their page images (bytes): both requests then carry the pages, fitted to
generate.max_image_pixels, and the judge rates the visual axes too.

The round trips of a batch go to the backend first and the judge's requests after them: both
start with the same document, so the judge's prompts find it in the engine's prefix cache.
"""

from __future__ import annotations

from docsynth.core.agree import agreement
from docsynth.core.inert import Inert
from docsynth.core.qatype import type_check
from docsynth.config.recipe import VerifyConfig
from docsynth.core.records import CHECK_NAMES, RATED_AXES, Verdicts
from docsynth.core.spans import document_spans, evidence_holds
from docsynth.llm.backends import Completion, derive_seed
from docsynth.llm.prompts import NO_TEXT
from docsynth.llm.images import fit_image
from docsynth.llm.parse import ParseError
from docsynth.llm.session import Session
from docsynth.verify.ask import NOT_STATED, answer_template, answers_schema, parse_answers, verify_request
from docsynth.verify.choice import NONE_OF_THESE, choice_request, choice_template, options, read_choice, reference
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
        self.tokens = {k: {"requests": 0, "prompt": 0, "cached": 0, "output": 0}
                       for k in ("answer", "choice", "vote", "judge")}

    def check(self, rows: list[dict]) -> list[Verdicts]:
        """Verdicts for each row, in order (one backend call per kind of request)."""
        asked = [r for r in rows if r["template"] not in self.cfg.skip_templates and r["questions"]]
        checks = self.cfg.checks
        trip = self._answers(asked, self.cfg.sampling, "answer", [""]) if "round_trip" in checks else {}
        votes = self._answers(asked, self.cfg.vote_sampling, "vote", [f":{i}" for i in range(self.cfg.votes)]) \
            if "vote" in checks else {}
        chosen = self._choices(asked) if "choice" in checks else {}
        rated = [r for r in rows if r["questions"]] if self.cfg.judge else []
        judged = dict(zip((r["sample_id"] for r in rated), self._complete([judge_request(
            self.judge, self.inert, self._document(r), r["questions"], r["answers"],
            derive_seed(self.seed, f"judge:{r['sample_id']}"), self.cfg.guided_json, self._images(r)) for r in rated],
            self.cfg.judge_sampling, "judge")))
        out = []
        for r in rows:
            skipped = r["template"] in self.cfg.skip_templates
            v = round_trip(r, trip.get(r["sample_id"]), self.session.model, self.cfg.min_f1,
                           self.cfg.questions_per_request, "skipped template" if skipped else "round trip not asked")
            if not skipped:
                combine(v, r, checks, votes.get(r["sample_id"]), chosen.get(r["sample_id"]), self.cfg.min_f1,
                        self.cfg.questions_per_request)
            out.append(rate(v, judged.get(r["sample_id"]), judge_axes(self.vision)))
        return out

    def _answers(self, rows: list[dict], sampling, kind: str, rounds: list[str]) -> dict[str, list[list[Completion]]]:
        """The free answers to every row's questions, one list of replies (one per request of its
        questions) per round: the round trip has one round, the vote verify.votes (own seeds)."""
        chunks = [(r, part, tag) for tag in rounds for r in rows
                  for part in _parts(len(r["questions"]), self.cfg.questions_per_request)]
        replies = self._complete([verify_request(
            self.answer, self.inert, self._document(r), r["questions"][part],
            derive_seed(self.seed, f"verify:{r['sample_id']}" + (f":{part.start}" if part.start else "") + tag),
            answers_schema(len(r["questions"][part]), self.cfg.max_answer_chars) if self.cfg.guided_json else None,
            self._images(r)) for r, part, tag in chunks], sampling, kind)
        got: dict[str, dict[str, list[Completion]]] = {}
        for (r, _, tag), reply in zip(chunks, replies):
            got.setdefault(r["sample_id"], {}).setdefault(tag, []).append(reply)
        return {sid: [by_round[t] for t in rounds] for sid, by_round in got.items()}

    def _choices(self, rows: list[dict]) -> dict[str, list[tuple[bool | None, str]]]:
        """The choice check of every pair: (agrees, reason), None where its answer is no span of
        the page or has no rival there."""
        template = choice_template()
        asked, out = [], {}
        for r in rows:
            found = document_spans(r["text"], list(r.get("pages") or [0]))
            evidence = r.get("evidence") or [None] * len(r["questions"])
            mine = []
            for j, (q, a) in enumerate(zip(r["questions"], r["answers"])):
                ref = reference(found, a, evidence[j] if j < len(evidence) else None)
                opts = options(found, ref, self.cfg.choice_options, self.seed, f"{r['sample_id']}:{j}") if ref else []
                if not opts:
                    mine.append((None, "the answer is no span of the page" if ref is None else
                                 "no other candidate answer of its kind on the page"))
                    continue
                mine.append(None)
                asked.append((r["sample_id"], j, " ".join(ref.text.split()), opts, choice_request(
                    template, self.inert, self._document(r), q, opts, derive_seed(self.seed, f"choice:{r['sample_id']}:{j}"))))
            out[r["sample_id"]] = mine
        sampling = self.cfg.sampling.model_copy(update={"temperature": 0.0, "max_tokens": 4})
        replies = self._complete([x[4] for x in asked], sampling, "choice")
        for (sid, j, ref, opts, _), reply in zip(asked, replies):
            pick = read_choice(reply.text, opts) if reply.error is None else None
            if pick is None:
                out[sid][j] = (None, f"verifier: no option in the reply {reply.text or reply.error!r}")
            else:
                out[sid][j] = (pick == ref, f"picked {pick!r}" + ("" if pick == ref else f" for {ref!r}")
                               if pick != NONE_OF_THESE else "picked none of the options")
        return out

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


def round_trip(row: dict, replies: list[list[Completion]] | None, model: str, min_f1: float,
               per: int | None = None, why: str = "skipped template") -> Verdicts:
    """One candidate's round-trip verdicts from the verifier's replies, one per request of its
    questions (None: its template is not verified); not rated yet (see rate). A reply that
    cannot be read leaves its own questions unchecked, not the sample's others."""
    n = len(row["questions"])
    unrated = {**{a: [None] * n for a in RATED_AXES}, "judge_reasons": [None] * n, "judge_raw": ""}
    none = {c: None for c in CHECK_NAMES}
    if replies is None:
        reason = f"template {row['template']} is not verified (verify.skip_templates)" if why == "skipped template" \
            else "the round trip is not among verify.checks"
        return Verdicts(row["sample_id"], row["template"], [None] * n, [None] * n, [why] * n, [reason] * n, model, 0,
                        0, "", **unrated, checks=[dict(none) for _ in range(n)])
    replies = replies[0]
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
                    "\n".join(c.text or "" for c in replies), **unrated,
                    checks=[{**none, "round_trip": ok} for ok in verified])


def _votes(row: dict, rounds: list[list[Completion]], min_f1: float, per: int | None) -> list[tuple[bool | None, str]]:
    """The vote check of a row's pairs: of the sampled answers that could be read, do more than
    half agree with the pair's answer?"""
    n = len(row["questions"])
    tally = [[0, 0] for _ in range(n)]  # agreeing, read
    for replies in rounds:
        for part, reply in zip(_parts(n, per), replies):
            try:
                if reply.error is not None:
                    raise ParseError(reply.error)
                answers = parse_answers(reply.text or "", part.stop - part.start)
            except ParseError:
                continue
            for j, r in zip(range(part.start, part.stop), answers):
                tally[j][1] += 1
                tally[j][0] += agreement(row["answers"][j], r or NOT_STATED, min_f1).agree
    return [(None, "no sampled answer could be read") if read == 0 else
            (agree * 2 > read, f"{agree} of {read} sampled answers agree") for agree, read in tally]


def combine(v: Verdicts, row: dict, checks: list[str], votes: list[list[Completion]] | None,
            chosen: list[tuple[bool | None, str]] | None, min_f1: float, per: int | None) -> None:
    """v with every asked check's verdict per pair, and the pair's verdict from all of them: False
    where one disagrees (the first, in CHECK_NAMES order, names how and why), True where one
    agrees and none disagrees, else the round trip's (None, and why)."""
    n = len(v.verified)
    evidence = row.get("evidence") or [None] * n
    results: dict[str, list[tuple[bool | None, str]]] = {}
    if "evidence" in checks:
        results["evidence"] = [evidence_holds(row["text"], evidence[j] if j < len(evidence) else None,
                                              row["answers"][j]) for j in range(n)]
    if "type" in checks:
        results["type"] = [type_check(q, a) for q, a in zip(row["questions"], row["answers"])]
    if chosen is not None:
        results["choice"] = chosen
    if votes is not None:
        results["vote"] = _votes(row, votes, min_f1, per)
    for j in range(n):
        for name, res in results.items():
            v.checks[j][name] = res[j][0]
        trip = v.verified[j]
        failed = [c for c in CHECK_NAMES if v.checks[j][c] is False]
        if failed:
            first = failed[0]
            v.verified[j] = False
            if first != "round_trip":
                v.how[j], v.reasons[j] = first, results[first][j][1]
        elif trip is None and any(v.checks[j][c] for c in CHECK_NAMES):
            first = next(c for c in CHECK_NAMES if v.checks[j][c])
            v.verified[j], v.how[j], v.reasons[j] = True, first, results[first][j][1]


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

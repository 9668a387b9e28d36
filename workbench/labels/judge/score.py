"""Score items with an LLM judge: :func:`score_items`.

Items are judged ``max_concurrency`` at a time. Each item ends with scores or a
failure of its own (a timeout, a 500 after retries, a malformed reply), never
an exception that loses the others. Replies are cached per request (only replies
that parse, so a re-run asks again for failed items only), and with ``out`` each
result is appended to ``out/results.jsonl`` as soon as it is known: a run that is
killed keeps what it finished, and re-running it costs only the rest.

Output directory::

    results.jsonl     one ItemScore per line, in completion order, written as they finish
    judge_run.json    the whole JudgeRun (judge config without key, judge prompt
                      and its SHA256, per-item results in input order), at the end
    cache/            the reply cache, unless the config names a cache_dir

>>> cfg = load_judge_config("judge.toml")  # doctest: +SKIP
>>> run = score_items(read_items("gens.jsonl"), cfg, out="runs/base/judge")  # doctest: +SKIP
>>> run.labels("factual_accuracy")["q1"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import IO, Any

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.store import check_out_dir
from workbench.labels.judge.cache import ReplyCache, request_key
from workbench.labels.judge.client import ChatClient
from workbench.labels.judge.config import JudgeConfig
from workbench.labels.judge.failure import JudgeCallError, JudgeFailure, Stage
from workbench.labels.judge.parse import parse_scores
from workbench.labels.judge.results import ItemScore, JudgeRun

__all__ = ["RESULTS_FILE", "RUN_FILE", "score_items"]

RESULTS_FILE = "results.jsonl"
RUN_FILE = "judge_run.json"
log = logging.getLogger("workbench.labels.judge")


def _check_reference(text: str) -> None:
    if not text.strip():
        raise JudgeCallError("empty_reference", "the judge's pass-1 reference is empty", reply=text)


class _Judge:
    """Judges one item at a time; shared by the worker threads."""

    def __init__(self, config: JudgeConfig, cache: ReplyCache | None) -> None:
        self.config = config
        self.client = ChatClient(config)
        self.cache = cache
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        # Two items with one prompt share one pass-1 request instead of racing.
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _parse(self, text: str) -> None:
        parse_scores(text, self.config.rubric.axis_names)

    def _ask(
        self, messages: list[dict[str, str]], stage: Stage, validate: Callable[[str], None]
    ) -> tuple[str, bool]:
        """The reply to ``messages`` and whether it came from the cache."""
        body = self.client.body(messages, self.config.max_tokens(stage))
        key = request_key(self.config.base_url, body)
        with self._lock(key):
            if self.cache is not None:
                text = self.cache.get(key)
                if text is not None:
                    try:
                        validate(text)
                        return text, True
                    except JudgeCallError:
                        pass  # an entry that no longer validates: ask again
            text = self.client.send(body)
            validate(text)
            if self.cache is not None:
                self.cache.put(key, self.config.base_url, body, text)
            return text, False

    def judge(self, item: Item) -> ItemScore:
        rubric, response = self.config.rubric, item.response or ""
        hashes = item.hashes()
        prompt_sha, response_sha = hashes["prompt_sha256"], hashes["response_sha256"]
        reference: str | None = None
        stage: Stage = "score"
        cached = True
        try:
            if self.config.mode == "two_pass":
                stage = "reference"
                messages = rubric.reference_messages(item.prompt)
                reference, cached = self._ask(messages, stage, _check_reference)
                stage = "score"
                messages = rubric.score_messages(item.prompt, reference, response)
            else:
                messages = rubric.direct_messages(item.prompt, response)
            reply, hit = self._ask(messages, stage, self._parse)
        except JudgeCallError as e:
            log.warning("judge failed on item %r (%s pass): %s", item.id, stage, e.message)
            return ItemScore(
                id=item.id,
                scores=None,
                failure=JudgeFailure.from_error(e, stage),
                reference=reference,
                reply=e.reply,
                prompt_sha256=prompt_sha,
                response_sha256=response_sha,
            )
        return ItemScore(
            id=item.id,
            scores=parse_scores(reply, rubric.axis_names),
            reference=reference,
            reply=reply,
            cached=cached and hit,
            prompt_sha256=prompt_sha,
            response_sha256=response_sha,
        )


def _judged_items(items: Sequence[Item | Mapping[str, Any]]) -> list[Item]:
    out = as_items(items)
    for it in out:
        if it.response is None:
            raise WorkbenchError(
                f"item {it.id!r} has no response: the judge scores responses; generate them "
                "first or add a 'response' field"
            )
    return out


def _append(f: IO[str], result: ItemScore) -> None:
    f.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    f.flush()


def score_items(
    items: Sequence[Item | Mapping[str, Any]],
    config: JudgeConfig,
    *,
    out: str | Path | None = None,
) -> JudgeRun:
    """Score each item's response on every rubric axis with the judge in ``config``.

    Args:
        items: :class:`~workbench.core.items.Item` objects or dicts with ``id``,
            ``prompt`` and ``response``.
        config: the judge, rubric, mode, concurrency, retries and cache.
        out: a directory for ``results.jsonl`` (appended as items finish),
            ``judge_run.json`` and, when ``config.cache_dir`` is None, ``cache/``.

    Returns:
        The run: per item (input order) the scores or the failure, plus the judge
        prompt and its SHA256.

    >>> run = score_items(  # doctest: +SKIP
    ...     [{"id": "q1", "prompt": "2+2?", "response": "4"}],
    ...     JudgeConfig(base_url="http://127.0.0.1:8000/v1", model="judge"),
    ... )
    >>> run.results[0].scores  # doctest: +SKIP
    {'factual_accuracy': 5, 'hedging_appropriateness': 4, ...}
    """
    todo = _judged_items(items)
    out_dir = None if out is None else Path(out)
    if out_dir is not None:
        check_out_dir(out_dir, "judge out")
    cache_dir = config.cache_dir or (None if out_dir is None else out_dir / "cache")
    judge = _Judge(config, None if cache_dir is None else ReplyCache(cache_dir))
    done: dict[str, ItemScore] = {}
    log_file: IO[str] | None = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_file = (out_dir / RESULTS_FILE).open("w", encoding="utf-8")
    try:
        with ThreadPoolExecutor(config.max_concurrency, thread_name_prefix="judge") as pool:
            futures = [pool.submit(judge.judge, it) for it in todo]
            try:
                for future in as_completed(futures):
                    result = future.result()
                    done[result.id] = result
                    if log_file is not None:
                        _append(log_file, result)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        if log_file is not None:
            log_file.close()
    run = JudgeRun(
        config=config,
        judge_prompt=config.rubric.judge_prompt(config.mode),
        judge_prompt_sha256=config.rubric.prompt_sha256(config.mode),
        results=tuple(done[it.id] for it in todo),
    )
    if out_dir is not None:
        run.write(out_dir / RUN_FILE)
    n_cached = sum(r.cached for r in run.results)
    log.info(
        "judged %d items: %d scored (%d from cache), %d failed",
        len(todo),
        run.n_ok,
        n_cached,
        len(todo) - run.n_ok,
    )
    return run

"""Training data for :mod:`workbench.conditions.training`: JSONL rows, tokenised as the workbench reads them.

An SFT file has one object per line with ``prompt`` and ``response``; a DPO file
has ``prompt``, ``chosen`` and ``rejected``. Other fields (``id``, labels) are
ignored, so a workbench item file with responses is an SFT file.

Tokenisation follows the DESIGN's *h_last* rule, so a model is trained on
exactly the token sequence that capture and generation later feed it: the
prompt is rendered through the chat template (``add_generation_prompt=True``)
when the tokenizer has one, the rendered prompt and each response are
tokenised separately with ``add_special_tokens=False`` and concatenated, and
the response ends with the EOS token. Only response tokens carry loss.

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "sft.jsonl"
>>> _ = path.write_text(json.dumps({"prompt": "What is the capital of Angola?", "response": "Luanda."}))
>>> rows = read_training_rows(path, "sft")
>>> rows[0]["prompt"], rows[0]["response"]
('What is the capital of Angola?', 'Luanda.')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.items import jsonl_lines
from workbench.model.tokens import encode_prompt

__all__ = ["FIELDS", "METHODS", "read_training_rows", "tokenize_rows"]

#: The fields each training method needs on every line.
FIELDS: dict[str, tuple[str, ...]] = {
    "sft": ("prompt", "response"),
    "dpo": ("prompt", "chosen", "rejected"),
}
METHODS = tuple(FIELDS)


def _check_method(method: str) -> tuple[str, ...]:
    if method not in FIELDS:
        raise WorkbenchError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    return FIELDS[method]


def read_training_rows(path: str | Path, method: str) -> list[dict[str, str]]:
    """The rows of a JSONL training file, with errors that name the line.

    Args:
        path: a JSONL file, one object per line (blank lines are skipped).
        method: ``sft`` (needs prompt, response) or ``dpo`` (prompt, chosen, rejected).

    Returns:
        One dict per line holding only the needed fields.
    """
    fields = _check_method(method)
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(
            f"training file {path} does not exist: pass a JSONL file with {', '.join(fields)} per line"
        )
    rows: list[dict[str, str]] = []
    for lineno, obj in jsonl_lines(path):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            raise WorkbenchError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        for name in fields:
            value = obj.get(name)
            if not isinstance(value, str) or not value:
                what = "missing" if name not in obj else f"not a non-empty string ({value!r})"
                raise WorkbenchError(
                    f"{where}: field {name!r} is {what}: a {method} line needs "
                    f"{', '.join(fields)} as strings"
                )
        rows.append({name: obj[name] for name in fields})
    if not rows:
        raise WorkbenchError(
            f"training file {path} is empty: it needs at least one line with {', '.join(fields)}"
        )
    return rows


def _eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if not isinstance(eos, int):
        raise WorkbenchError(
            "the tokenizer has no EOS token: set tokenizer.eos_token before training"
        )
    return eos


def _response_ids(tokenizer: Any, text: str, eos: int, limit: int | None) -> tuple[list[int], bool]:
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [eos]
    if limit is not None and len(ids) > limit:
        return ids[:limit], True
    return ids, False


def tokenize_rows(
    tokenizer: Any,
    rows: Sequence[dict[str, str]],
    method: str,
    *,
    max_length: int | None = None,
    chat_template: bool | None = None,
) -> tuple[list[dict[str, list[int]]], int]:
    """Token ids per row, and how many rows had a response cut to fit ``max_length``.

    SFT rows become ``input_ids`` and ``labels`` (-100 on prompt tokens); DPO rows
    become ``prompt_ids``, ``chosen_ids`` and ``rejected_ids``, the format both
    trl trainers take as already tokenised.
    """
    fields = _check_method(method)
    eos = _eos_id(tokenizer)
    out: list[dict[str, list[int]]] = []
    n_cut = 0
    for i, row in enumerate(rows):
        prompt = encode_prompt(tokenizer, row["prompt"], chat_template)
        room = None if max_length is None else max_length - len(prompt)
        if room is not None and room < 1:
            raise WorkbenchError(
                f"row {i}: the rendered prompt has {len(prompt)} tokens, max_length is {max_length}: "
                "raise max_length or shorten the prompt"
            )
        responses = [_response_ids(tokenizer, row[name], eos, room) for name in fields[1:]]
        n_cut += any(cut for _, cut in responses)
        if method == "sft":
            ((ids, _),) = responses
            out.append({"input_ids": prompt + ids, "labels": [-100] * len(prompt) + ids})
        else:
            (chosen, _), (rejected, _) = responses
            out.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    return out, n_cut

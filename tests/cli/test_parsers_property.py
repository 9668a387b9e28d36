"""Property-based: no generated input makes a parser raise anything but WorkbenchError.

The parsers of site specs, label specs (``PATH[:FIELD][>=T]``, and the files
they name), head specs and study config files (TOML text and dicts).
"""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import WorkbenchError

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SPEC_CHARS = string.ascii_letters + string.digits + "()[],=:.-+*>/_ \x00é"
spec_text = st.one_of(st.text(alphabet=SPEC_CHARS, max_size=40), st.text(max_size=40))


def _only_ours(call, *args):
    with contextlib.suppress(WorkbenchError):
        call(*args)


@FAST
@given(spec_text)
def test_site_specs(text):
    from workbench.core.sites import expand_sites, parse_site, parse_sites

    _only_ours(parse_site, text)
    _only_ours(parse_sites, [text, "h_last"])
    _only_ours(expand_sites, [text], [0, 1])


@FAST
@given(st.builds(lambda a, b, c: f"{a}({b}{c})", st.sampled_from(["resid", "head_in", "head_norm", "mean_last_n", "x"]),
                 st.integers(-50, 50).map(str) | st.text(alphabet="-0123456789*", max_size=4),
                 st.sampled_from(["", ",normed", ",last=0", ",last=3", ",last=x", ",x=1", ","])))  # fmt: skip
def test_site_specs_close_to_valid(text):
    from workbench.core.sites import parse_site

    _only_ours(parse_site, text)


@FAST
@given(spec_text)
def test_head_specs(text):
    from interventions.temper import parse_head

    _only_ours(parse_head, text)


@FAST
@given(
    st.text(alphabet=SPEC_CHARS, max_size=30),
    st.sampled_from(["", ":y", ":y>=", ":y>=0.5", ">=x", ":a.b"]),
)
def test_label_specs(text, tail):
    from probes.labels import load_labels, parse_spec

    _only_ours(parse_spec, text + tail)
    _only_ours(load_labels, text + tail)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["id", "y", "s", "items"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@FAST
@given(json_values, st.sampled_from(["y", "s.y", None]), st.booleans())
def test_label_files_of_any_shape(tmp_path_factory, value, field, with_ids):

    root = tmp_path_factory.mktemp("labels")
    for name, text in {
        "l.json": json.dumps(value),
        "l.jsonl": "\n".join(
            json.dumps(v) for v in (value if isinstance(value, list) else [value])
        ),
        "l.csv": "id,y\n"
        + "".join(f"{v},{v}\n" for v in (value if isinstance(value, list) else [value])),
    }.items():
        path = Path(root / name)
        path.write_text(text)
        spec = str(path) + (f":{field}" if field else "")
        _only_ours(_load_labels_kw, spec, None, ["a", "b"] if with_ids else None)


def _load_labels_kw(spec, threshold, ids):
    from probes.labels import load_labels

    return load_labels(spec, threshold=threshold, ids=ids)


toml_scalars = st.one_of(st.integers(-3, 300).map(str), st.floats().map(repr),
                         st.text(max_size=10).map(json.dumps), st.sampled_from(["true", "false", "[]", "[1.0]", '["x"]', "[0.0, 1.0]", "{}"]))  # fmt: skip
KEYS = {
    "run": ["threads", "seed", "title"], "model": ["name", "dtype", "device", "batch_size", "prompt_template", "chat_template"],
    "items": ["families", "train", "fresh", "fresh_hard", "seed"], "generation": ["max_new_tokens", "short_max_new_tokens"],
    "capture": ["head_last_n", "pooled_last_n", "depth_curve"], "probe": ["folds", "n_boot", "axes", "Cs"],
    "tempering": ["lambdas", "seeds", "temperature", "top_p", "n_items"], "sidecar": ["threshold", "split"],
    "traces": ["n_examples", "split"], "zzz": ["a"],
}  # fmt: skip


@FAST
@given(
    st.lists(
        st.sampled_from(sorted(KEYS)).flatmap(
            lambda s: st.tuples(st.just(s), st.sampled_from(KEYS[s]), toml_scalars)
        ),
        max_size=5,
    )
)
def test_study_config_files(tmp_path_factory, entries):
    from workbench.study.config import StudyConfig

    by_section: dict[str, dict[str, str]] = {}
    for section, key, value in entries:
        by_section.setdefault(section, {})[key] = value
    text = "".join(
        f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in by_section.items()
    )
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text)
    _only_ours(StudyConfig.from_toml, path)


@FAST
@given(st.text(max_size=200))
def test_any_text_as_a_config_file(tmp_path_factory, text):
    from workbench.study.config import StudyConfig

    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_bytes(text.encode("utf-8", "replace"))
    _only_ours(StudyConfig.from_toml, path)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            ["model", "temperature", "max_tokens", "api_key_env", "base_url", "axes", "x"]
        ),
        json_values,
        max_size=4,
    )
)
def test_judge_config_dicts(data):
    from workbench.labels.judge import load_judge_config

    _only_ours(load_judge_config, data)

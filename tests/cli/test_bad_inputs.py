"""Every command refuses bad input with exit code 2 and one line, before any work.

Each case runs in this process through typer's ``CliRunner`` on the same app
the ``workbench`` script builds, and asserts: exit code 2; stderr is exactly
one line, ``error: ...``, holding the expected words and no traceback; every
file and folder of the workspace (pre-existing outputs included) is
byte-identical afterwards. Commands that would load a model get a model path
that does not exist, so a case that reached the weights would fail with the
wrong message: each of them is refused before any weights load.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli.app import build_app

NO_MODEL = "/nonexistent/model-that-must-not-load"

GOOD_TOML = f"""[run]\nthreads = 1\n[model]\nname = "{NO_MODEL}"\nbatch_size = 4
[items]\ntrain = 12\nfresh = 10\nfresh_hard = 0
[generation]\nmax_new_tokens = 6\nshort_max_new_tokens = 3
[second_model]\nenabled = false\n"""

#: (section, line, expected words): one bad value each, appended to GOOD_TOML.
CONFIG_CASES = [
    ("items", "train = 1", "train = 1"),
    ("items", "train = -5", "train"),
    ("items", 'families = ["astrology"]', "astrology"),
    ("items", "families = []", "families"),
    ("items", 'train = "many"', "train"),
    ("run", "threads = -3", "threads"),
    ("run", "seed = 1.5", "seed"),
    ("model", 'dtype = "float8"', "float8"),
    ("model", "batch_size = 0", "batch_size"),
    ("model", 'prompt_template = "no placeholder"', "{prompt}"),
    ("model", 'chat_template = "sometimes"', "chat_template"),
    ("model", 'device = "tpu:7"', "tpu"),
    ("generation", "max_new_tokens = 0", "max_new_tokens"),
    ("generation", "short_max_new_tokens = 100", "short_max_new_tokens"),
    ("capture", "head_last_n = 0", "head_last_n"),
    ("capture", "pooled_last_n = -1", "pooled_last_n"),
    ("capture", 'depth_curve = "yes"', "depth_curve"),
    ("probe", "folds = 1", "folds"),
    ("probe", "n_boot = -1", "n_boot"),
    ("probe", 'axes = ["vibes"]', "vibes"),
    ("probe", "Cs = [0.0]", "C"),
    ("second_model", 'responses = "theirs"', "theirs"),
    ("attribution", 'cohort_a = "xx"', "xx"),
    ("attribution", "min_cohort = 1", "min_cohort"),
    ("attribution", 'split = "nowhere"', "nowhere"),
    ("tempering", "lambdas = [-1.0]", "-1"),
    ("tempering", "lambdas = [0.5]", "include 1.0"),
    ("tempering", "lambdas = [1.0, nan]", "nan"),
    ("tempering", "seeds = [0]", "seeds"),
    ("tempering", "temperature = 0", "temperature"),
    ("tempering", "top_p = 2", "top_p"),
    ("tempering", "n_items = 0", "n_items"),
    ("sidecar", "threshold = 1.5", "threshold"),
    ("sidecar", 'split = "train2"', "train2"),
    ("traces", "n_examples = -1", "n_examples"),
    ("traces", 'split = "x"', "'x'"),
    ("surprise", "a = 1", "unknown section"),
    ("model", "unknown_key = 1", "unknown_key"),
]


def _cases() -> list[tuple[str, list[str], str]]:
    """(case id, argv with {placeholders}, words the one-line error must hold)."""
    fz = ["falsify", "--out", "{out}"]
    F = [*fz, "--train", "{npz}"]
    A = ["attribute", "--out", "{out}", "--features", "{store}"]
    C = ["capture", "--model", NO_MODEL, "--out", "{out}", "--site", "h_last"]
    G = ["generate", "--model", NO_MODEL, "--max-new-tokens", "4", "--out", "{new_out}"]
    T = ["temper", "--model", NO_MODEL, "--items", "{items}", "--out", "{out}", "--lambda", "1.0"]
    cases: list[tuple[str, list[str], str]] = []

    # falsify: label files (defect 1 and its neighbours)
    for spec, words in [
        ("{null_id.jsonl}:y", "line 4 has no id"),
        ("{some_ids.jsonl}:y", "line 1 has no id"),
        ("{bad_line5.jsonl}:y", ":5:"),
        ("{latin1.jsonl}:y", "not UTF-8"),
        ("{latin1.csv}:y", "not UTF-8"),
        ("{latin1.json}:y", "not UTF-8"),
        ("{dir.jsonl}:y", "is a directory"),
        ("{dir.csv}:y", "is a directory"),
        ("{all_null.jsonl}:y", "no value for any"),
        ("{strings.jsonl}:y", "not a number"),
        ("{continuous.jsonl}:y", "continuous values"),
        ("{dup_ids.jsonl}:y", "more than once"),
        ("{scalar.json}:y", "single int"),
        ("{bad.json}", "not valid JSON"),
        ("{deep.json}", "nests too deeply"),
        ("{empty.json}", "not valid JSON"),
        ("{number.json}", "no list of labels"),
        ("{nested.json}", "name one with PATH:FIELD"),
        ("{nested.json}:s.b", "field 's.b' is not in"),
        ("{labels.txt}", "suffix '.txt'"),
        ("{bom_partial.csv}:y", "row 3 has no id"),
        ("{csv_no_field.csv}:y", "field 'y' is not in"),
        ("{labels}:y>=abc", "not a number"),
        ("{labels}:y>=inf", "finite"),
        ("/nonexistent/labels.jsonl:y", "does not exist"),
        ("{notobj.jsonl}:y", "not in"),
        ("{short_list.json}", "labels"),
        ("", "not PATH"),
    ]:
        cases.append((f"falsify-labels-{spec}", [*F, "--train-labels", spec], words))
    # falsify: features
    for feats, words in [
        ("{npz_empty}", "non-empty numeric"),
        ("{npz_str}", "dtype <U1"),
        ("{npz_1d}", "shape (12,)"),
        ("{npz_nox}", "no array 'X'"),
        ("{npz_pickle}", "pickled"),
        ("{npz_garbage}", "not a readable .npz"),
        ("{escape_store}", "not a shard of this store"),
        ("{corrupt_store}", "corrupted"),
        ("{bad_manifest}", "not valid JSON"),
        ("{other_manifest}", "not a workbench feature manifest"),
        ("{store}", "several sites"),
        ("{store}:resid(3)", "not in"),
        ("{h_store}:bogus(1)", "is not in"),
        ("{labels}", "neither a feature-store directory nor an .npz"),
        ("/nonexistent.npz", "do not exist"),
        ("{npz}>=3", "threshold applies to labels"),
    ]:
        cases.append(
            (
                f"falsify-features-{feats}",
                [*fz, "--train", feats, "--train-labels", "{labels}:y"],
                words,
            )
        )
    L = [*F, "--train-labels", "{labels}:y"]
    for extra, words in [
        (["--probe", "forest"], "forest"),
        (["--fresh", "{npz}"], "go together"),
        (["--fresh-labels", "{labels}:y"], "go together"),
        (["--layers-fresh", "{npz}"], "needs --layers-train"),
        (["--second-model-fresh", "{npz}"], "needs --second-model-train"),
        (["--axis", "nonsense"], "NAME=TRAIN_LABELS"),
        (["--axis", "a={labels}:y", "--axis", "a={labels}:y"], "given twice"),
        (["--folds", "x"], "--folds"),
        (["--folds", "1"], "folds"),
        (["--folds", "0"], "folds"),
        (["--C", "0"], "C"),
        (["--C", "-1"], "C"),
        (["--C", "nan"], "C"),
        (["--n-boot", "-1"], "n_boot"),
        (["--n-perm", "-5"], "n_perm"),
        (["--last-n", "0"], "last"),
        (["--threshold", "abc"], "--threshold"),
        (["--bogus"], "No such option"),
        (["--fresh", "{npz_str}", "--fresh-labels", "{labels}:y"], "dtype <U1"),
        (
            ["--fresh", "{h_store}", "--fresh-labels", "{missing_item.jsonl}:y"],
            "no label for feature item",
        ),
        (["--second-model-train", "{npz_empty}"], "non-empty"),
        (["--layers-train", "{npz_str}"], "dtype"),
    ]:
        cases.append((f"falsify-option-{' '.join(extra)}", [*L, *extra], words))
    cases.append(("falsify-one-class", [*F, "--train-labels", "{one_class.jsonl}:y"], "one class"))
    cases.append(("falsify-length", [*F, "--train-labels", "{short_list.json}"], "3"))
    for out, words in [
        ("{file}", "is a file"),
        ("{file}/sub", "which is a file"),
        ("{readonly}", "not writable"),
        ("{readonly}/new/deeper", "not writable"),
    ]:
        cases.append(
            (
                f"falsify-out-{out}",
                ["falsify", "--out", out, "--train", "{npz}", "--train-labels", "{labels}:y"],
                words,
            )
        )

    # attribute
    for extra, words in [
        (["--correct", "{null_id.jsonl}:y"], "has no id"),
        (["--correct", "{missing_item.jsonl}:y"], "no label for feature item 'q11'"),
        (["--correct", "{short_list.json}"], "has 3 labels"),
        (["--correct", "{labels}:y", "--verbal", "{all_null.jsonl}:y"], "no value for any"),
        (["--correct", "{labels}:y", "--site", "head_in(5,last=2)"], "holds no site"),
        (["--correct", "{labels}:y", "--compare", "cw:cw"], "--compare"),
        (["--correct", "{labels}:y", "--compare", "nonsense"], "--compare"),
        (["--correct", "{labels}:y", "--compare", "cw:cr"], "cw:cr needs --verbal"),
        (["--correct", "{latin1.csv}:y"], "not UTF-8"),
        (["--correct", "{dir.jsonl}:y"], "is a directory"),
        (["--correct", "{labels}:y", "--top", "x"], "--top"),
    ]:
        cases.append((f"attribute-{' '.join(extra)}", [*A, *extra], words))
    for feats, words in [
        ("{npz}", "holds no manifest.json"),
        ("{escape_store}", "not a shard of this store"),
        ("{bad_manifest}", "not valid JSON"),
        ("/nonexistent-store", "holds no manifest.json"),
        ("{h_store}", "holds no site head_in"),
    ]:
        cases.append(
            (
                f"attribute-features-{feats}",
                ["attribute", "--out", "{out}", "--features", feats, "--correct", "{labels}:y"],
                words,
            )
        )
    cases.append(
        (
            "attribute-out-file",
            ["attribute", "--out", "{file}", "--features", "{store}", "--correct", "{labels}:y"],
            "is a file",
        )
    )
    cases.append(
        (
            "attribute-out-readonly",
            [
                "attribute",
                "--out",
                "{readonly}/x",
                "--features",
                "{store}",
                "--correct",
                "{labels}:y",
            ],
            "not writable",
        )
    )

    # capture
    for extra, words in [
        (["--items", "{items_bad_line3.jsonl}"], ":3:"),
        (["--items", "{items_noprompt.jsonl}"], "missing field 'prompt'"),
        (["--items", "{items_dup.jsonl}"], "duplicate id"),
        (["--items", "{items_emptyprompt.jsonl}"], "non-empty string"),
        (["--items", "{items_badresp.jsonl}"], "'response' must be"),
        (["--items", "{items_latin1.jsonl}"], "not UTF-8"),
        (["--items", "{empty.jsonl}"], "is empty"),
        (["--items", "{notobj.jsonl}"], "expected a JSON object"),
        (["--items", "{dir.jsonl}"], "is a directory"),
        (["--items", "/nonexistent/items.jsonl"], "does not exist"),
        (["--items", "{items}", "--site", "bogus"], "unknown site"),
        (["--items", "{items}", "--site", "resid(x)"], "resid"),
        (["--items", "{items}", "--site", "head_in(1,last=0)"], "last=N"),
        (["--items", "{items}", "--site", "h_last"], "twice"),
        (["--items", "{items}", "--batch-size", "0"], "--batch-size 0"),
        (["--items", "{items}", "--shard-size", "0"], "--shard-size 0"),
        (["--items", "{items}", "--max-response-tokens", "0"], "--max-response-tokens 0"),
        (["--items", "{items}", "--dtype", "float7"], "float7"),
        (["--items", "{items}", "--batch-size", "many"], "--batch-size"),
    ]:
        cases.append((f"capture-{' '.join(extra)}", [*C, *extra], words))
    for out, words in [
        ("{file}", "is a file"),
        ("{readonly}", "not writable"),
        ("{readonly}/a/b", "not writable"),
    ]:
        cases.append(
            (
                f"capture-out-{out}",
                [
                    "capture",
                    "--model",
                    NO_MODEL,
                    "--items",
                    "{items}",
                    "--site",
                    "h_last",
                    "--out",
                    out,
                ],
                words,
            )
        )

    # generate
    for extra, words in [
        (["--items", "{items}", "--score", "domain"], "no 'family' label"),
        (["--items", "{items}", "--score", "coverage"], "no 'checklist' label"),
        (["--items", "{items_unknown_family.jsonl}", "--score", "domain"], "astrology"),
        (["--items", "{items_clash.jsonl}"], "label named 'truncated'"),
        (["--items", "{items}", "--score", "judge:x"], "cannot be stored"),
        (["--items", "{items}", "--score", "domain>=0.5"], "cannot be stored"),
        (["--items", "{items}", "--score", "vibes"], "vibes"),
        (["--items", "{items_bad_line3.jsonl}"], ":3:"),
        (["--items", "{items_latin1.jsonl}"], "not UTF-8"),
        (["--items", "{dir.jsonl}"], "is a directory"),
        (["--items", "{items}", "--max-new-tokens", "zero"], "--max-new-tokens"),
    ]:
        cases.append((f"generate-{' '.join(extra)}", [*G, *extra], words))
    for out, words in [
        ("{file}", "is a file"),
        ("{readonly}", "not writable"),
        ("{cond_a}", "already holds a condition"),
        ("{not_a_condition_full}", "holds files but no condition"),
    ]:
        cases.append(
            (
                f"generate-out-{out}",
                [
                    "generate",
                    "--model",
                    NO_MODEL,
                    "--max-new-tokens",
                    "4",
                    "--items",
                    "{items}",
                    "--out",
                    out,
                ],
                words,
            )
        )

    # temper
    for extra, words in [
        (["--head", "1.1", "--at", "q_proj"], "--at"),
        ([], "nothing to scale"),
        (["--at", "mlp"], "nothing to scale"),
        (["--head", "x.y"], "x.y"),
        (["--head", "1"], "'1'"),
        (["--head", "1.1", "--lambda", "-1"], "-1"),
        (["--head", "1.1", "--lambda", "nan"], "nan"),
        (["--head", "1.1", "--lambda", "inf"], "inf"),
        (["--head", "1.1", "--max-new-tokens", "0"], "max_new_tokens"),
        (["--head", "1.1", "--temperature", "0"], "temperature"),
        (["--head", "1.1", "--items", "{items_bad_line3.jsonl}"], ":3:"),
        (["--head", "1.1", "--items", "{dir.jsonl}"], "is a directory"),
    ]:
        cases.append((f"temper-{' '.join(extra)}", [*T, *extra], words))
    for out, words in [("{file}", "is a file"), ("{readonly}", "not writable")]:
        cases.append(
            (
                f"temper-out-{out}",
                [
                    "temper",
                    "--model",
                    NO_MODEL,
                    "--items",
                    "{items}",
                    "--lambda",
                    "1.0",
                    "--head",
                    "1.1",
                    "--out",
                    out,
                ],
                words,
            )
        )

    # compare
    for a, b, extra, words in [
        ("{cond_a}", "{cond_b}", [], "max_new_tokens"),
        ("{cond_a}", "{not_a_condition}", [], "has no condition.json"),
        ("{cond_a}", "{cond_missing_key}", [], "lacks key 'decoding'"),
        ("{cond_a}", "{cond_unknown_key}", [], "unknown key 'surprise'"),
        ("{cond_a}", "{cond_unknown_decoding}", [], "unknown key 'beam'"),
        ("{cond_a}", "{cond_bad_items}", [], "'items' must hold"),
        ("{cond_a}", "{cond_format}", [], "format 'other/1'"),
        ("{cond_a}", "{cond_bad_json}", [], "not valid JSON"),
        ("{cond_a}", "{cond_edited}", [], "was edited"),
        ("{cond_a}", "{file}", [], "has no condition.json"),
        ("{cond_a}", "{cond_a}", ["--score", "vibes"], "vibes"),
        ("{cond_a}", "{cond_a}", ["--score", "judge:x"], "no judge run"),
        ("{cond_a}", "{cond_a}", ["--score", "score:nothing"], "stores no score"),
        ("{cond_a}", "{cond_a}", ["--score", "domain>=x"], "not a number"),
        ("{cond_nofamily}", "{cond_nofamily}", [], "no 'family' label"),
        ("{cond_a}", "{cond_a}", ["--n-boot", "x"], "--n-boot"),
    ]:
        cases.append(
            (f"compare-{b}-{' '.join(extra)}", ["compare", a, b, "--out", "{out}", *extra], words)
        )
    cases.append(
        ("compare-out-file", ["compare", "{cond_a}", "{cond_a}", "--out", "{file}"], "is a file")
    )
    cases.append(
        (
            "compare-out-readonly",
            ["compare", "{cond_a}", "{cond_a}", "--out", "{readonly}"],
            "not writable",
        )
    )

    # run / demo
    for section, line, words in CONFIG_CASES:
        cases.append(
            (
                f"run-config-{section}-{line}",
                ["run", f"{{cfg:{section}|{line}}}", "--out", "{out}"],
                words,
            )
        )
    for cfg, words in [
        ("{not_a_condition}", "is a directory"),
        ("/nonexistent.toml", "does not exist"),
        ("{bad_toml}", "not valid TOML"),
        ("{latin1_toml}", "not UTF-8"),
    ]:
        cases.append((f"run-file-{cfg}", ["run", cfg, "--out", "{out}"], words))
    for setup, words in [
        ("traces/important_notes.txt", "traces"),
        ("sweep/mine.csv", "sweep"),
        ("splits/train/notes.md", "splits/train"),
        ("splits/fresh/short/x.txt", "splits/fresh/short"),
        ("report.html", "report.html"),
        ("labels/train.jsonl", "labels"),
        ("splits=file", "splits"),
    ]:
        cases.append(
            (f"run-owned-{setup}", ["run", "{good_toml}", "--out", f"{{userdir:{setup}}}"], words)
        )
    cases.append(("run-out-file", ["run", "{good_toml}", "--out", "{file}"], "is a file"))
    cases.append(
        ("run-out-readonly", ["run", "{good_toml}", "--out", "{readonly}/run"], "not writable")
    )
    cases.append(
        ("run-threads", ["run", "{good_toml}", "--out", "{out}", "--threads", "x"], "--threads")
    )
    cases.append(("demo-out-file", ["demo", "--out", "{file}"], "is a file"))
    cases.append(("demo-out-readonly", ["demo", "--out", "{readonly}"], "not writable"))
    cases.append(("unknown-command", ["frobnicate"], "No such command"))
    # a file of the user's that a command would overwrite in a folder it did not write
    for name, argv in [
        ("report.md", ["falsify", "--train", "{npz}", "--train-labels", "{labels}:y"]),
        ("figures.html", ["falsify", "--train", "{npz}", "--train-labels", "{labels}:y"]),
        ("attribution.html", ["attribute", "--features", "{store}", "--correct", "{labels}:y"]),
        (
            "sweep.json",
            [
                "temper",
                "--model",
                NO_MODEL,
                "--items",
                "{items}",
                "--lambda",
                "1.0",
                "--head",
                "1.1",
            ],
        ),
        ("comparison.json", ["compare", "{cond_a}", "{cond_a}"]),
        ("rescored/a/notes.txt", ["compare", "{cond_a}", "{cond_a}"]),
    ]:
        cases.append(
            (
                f"overwrite-{argv[0]}-{name}",
                [*argv, "--out", f"{{userdir:{name}}}"],
                name.split("/")[0],
            )
        )
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, build_workspace):
    root = tmp_path_factory.mktemp("bad-inputs")
    paths = build_workspace(root)
    out = root / "out"
    out.mkdir()
    (out / "precious.txt").write_text("a week of results\n")  # a pre-existing output
    paths["out"] = out
    full = root / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine\n")
    paths["not_a_condition_full"] = full
    paths["new_out"] = root / "never_created"
    (root / "good.toml").write_text(GOOD_TOML)
    paths["good_toml"] = root / "good.toml"
    (root / "bad.toml").write_text("[items\ntrain = ")
    paths["bad_toml"] = root / "bad.toml"
    (root / "latin1.toml").write_bytes('[run]\ntitle = "caf\xe9"\n'.encode("latin-1"))
    paths["latin1_toml"] = root / "latin1.toml"
    os.chmod(paths["readonly"], 0o555)
    if os.geteuid() == 0:  # root writes through permissions: use a place no one may write
        paths["readonly"] = Path("/sys/workbench-bad-inputs")
    yield root, paths
    os.chmod(root / "readonly", 0o755)


def _toml_with(section: str, line: str) -> str:
    """GOOD_TOML with ``line`` in ``[section]`` (replacing the key if it is there)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in GOOD_TOML.splitlines():
        if raw.startswith("["):
            current = raw.strip("[]")
            sections.setdefault(current, [])
        elif raw:
            sections[current].append(raw)
    key = line.split("=", 1)[0].strip()
    body = [x for x in sections.get(section, []) if x.split("=", 1)[0].strip() != key]
    sections[section] = [*body, line]
    return "".join(
        f"[{name}]\n" + "".join(f"{x}\n" for x in lines) for name, lines in sections.items()
    )


def _expand(arg: str, root: Path, paths: dict[str, Path]) -> str:
    if arg.startswith("{cfg:"):
        section, line = arg[5:-1].split("|", 1)
        path = root / "configs" / f"{abs(hash(arg))}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(_toml_with(section, line))
        return str(path)
    if arg.startswith("{userdir:"):
        setup = arg[9:-1]
        d = root / "userdirs" / f"{abs(hash(arg))}"
        rel, _, kind = setup.partition("=")
        target = d / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("not the workbench's\n")
        return str(d)
    return re.sub(r"\{([^{}]+)\}", lambda m: str(paths[m[1]]), arg)


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace, snapshot_of, argv, words):
    root, paths = workspace
    args = [_expand(a, root, paths) for a in argv]
    before = snapshot_of(root)
    result = CliRunner().invoke(build_app(args[0]), args)
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, err, result.stdout, result.exception)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + result.stdout
    assert words in err, err
    assert snapshot_of(root) == before


def test_the_suite_has_at_least_150_cases():
    assert len(CASES) >= 150, len(CASES)
    assert len({c[0] for c in CASES}) == len(CASES)

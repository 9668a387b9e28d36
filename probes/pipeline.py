"""The five-step falsification pipeline as one function.

Each step closes an escape hatch a probe result could hide behind; a result is
worth believing only if it passes all five. Steps whose inputs are absent are
``not run``. Every probe setting (e.g. each ``C``) runs on every trial; the
setting a verdict rests on is chosen by CV AUC, never by fresh AUC.

Verdicts:

1. *CV*: pooled out-of-fold AUC >= ``CV_MIN_AUC`` (0.63) and its interval
   above 0.5.
2. *Fresh*: the gate (fresh AUC >= 0.63 and asymmetry <= -0.15) and fresh
   AUC above shuffled-label chance (p < 0.05).
3. *Axes*: per axis, fresh AUC >= 0.63 above chance (the asymmetry is a
   correctness notion, so not required); the step passes when at least one
   axis does (CV alone when no fresh labels).
4. *Layers* and 5. *Second model*: as step 2 on their own features (as
   step 1 when no fresh set).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from threadpoolctl import threadpool_limits

from probes._checks import (
    as_features,
    as_labels,
    check_classes,
    check_rows,
    check_widths,
    pool_layers,
)
from probes.crossval import cross_validate
from probes.disposition import GATE_MIN_AUC
from probes.estimators import LinearProbe
from probes.report import DataSummary, FalsificationReport, ProbeRun, StepResult, Trial
from probes.taxonomy import ALPHA, CHANCE_AUC, CV_MIN_AUC, diagnose
from probes.transfer import fit_and_score
from workbench.errors import WorkbenchError

__all__ = ["ESCAPE_HATCHES", "falsify"]

ESCAPE_HATCHES = {
    "cv": "Rules out 'the signal is an artefact of scoring the items the probe was fitted on': "
    "held-out folds of the training distribution.",
    "fresh": "Rules out 'CV only learned quirks of one generator': a probe must score items "
    "from an independent generator it never saw.",
    "axes": "Rules out 'correctness was the wrong target': every other behaviour axis gets "
    "its own probe and its own transfer test.",
    "layers": "Rules out 'the last layer was the wrong read-out': the mean of the last N "
    "layers is probed instead.",
    "second_model": "Rules out 'one model's idiosyncrasy': the same items through a second "
    "model of another family.",
}
TITLES = {
    "cv": "Within-distribution CV",
    "fresh": "Fresh held-out set",
    "axes": "Every label axis",
    "layers": "Mean of last N layers",
    "second_model": "Second model",
}

_Pair = tuple[ArrayLike, ArrayLike | None]


class _Set:
    """A checked (features, labels) pair: rows with a label are the ones used."""

    def __init__(self, X: ArrayLike, y: ArrayLike, what: str, folds: int | None) -> None:
        self.X = as_features(X, what)
        self.y = as_labels(y, what)
        check_rows(self.X, self.y, what)
        check_classes(self.y, what, folds)
        keep = ~np.isnan(self.y)
        self.X_used, self.y_used = self.X[keep], self.y[keep].astype(np.int8)
        n_pos = int(self.y_used.sum())
        self.summary = DataSummary(
            n=self.X.shape[0],
            n_labelled=int(keep.sum()),
            n_pos=n_pos,
            n_neg=int(keep.sum()) - n_pos,
            width=self.X.shape[1],
        )


class _TrialSpec:
    def __init__(
        self,
        name: str,
        features: str,
        criterion: str,
        train: _Set,
        fresh: _Set | None,
    ) -> None:
        self.name, self.features, self.criterion = name, features, criterion
        self.train, self.fresh = train, fresh


def _pair(
    X: _Pair, y: _Pair, prefix: str, folds: int, transform: Callable[[ArrayLike, str], ArrayLike]
) -> tuple[_Set, _Set | None]:
    """Check a (train, fresh) pair; ``prefix`` names it in errors ("" for the main sets)."""
    what_train, what_fresh = f"{prefix} train".strip(), f"{prefix} fresh".strip()
    train = _Set(transform(X[0], what_train), y[0], what_train, folds)
    if X[1] is None:
        return train, None
    if y[1] is None:
        raise WorkbenchError(f"{what_fresh} features were given without labels: pass both")
    fresh = _Set(transform(X[1], what_fresh), y[1], what_fresh, None)
    check_widths(train.X, fresh.X, what_train, what_fresh)
    return train, fresh


def _settings(probe: BaseEstimator, Cs: Sequence[float]) -> list[tuple[str, BaseEstimator]]:
    if "C" in probe.get_params():
        if not Cs:
            raise WorkbenchError("Cs is empty: pass at least one C, e.g. Cs=(1.0,)")
        return [(f"C={C:g}", clone(probe).set_params(C=float(C))) for C in Cs]
    if tuple(Cs) != (1.0,):
        raise WorkbenchError(
            f"Cs={list(Cs)} but {type(probe).__name__} has no C parameter: drop Cs (--C) "
            "or use the linear probe"
        )
    return [(type(probe).__name__, clone(probe))]


def _run_trial(spec: _TrialSpec, settings, opts: dict, progress) -> Trial:  # type: ignore[no-untyped-def]
    runs = []
    for label, est in settings:
        progress(f"{spec.name}: {label}: {opts['folds']}-fold CV and control task")
        cv = cross_validate(
            est,
            spec.train.X_used,
            spec.train.y_used,
            folds=opts["folds"],
            seed=opts["seed"],
            n_boot=opts["n_boot"],
            n_control=opts["n_control"],
        )
        cv_ok = cv.auc.auc >= CV_MIN_AUC and cv.auc.lo > CHANCE_AUC
        transfer = transfer_ok = diagnosis = None
        if spec.fresh is not None:
            progress(f"{spec.name}: {label}: fit on train, score fresh")
            transfer = fit_and_score(
                est,
                spec.train.X_used,
                spec.train.y_used,
                spec.fresh.X_used,
                spec.fresh.y_used,
                n_boot=opts["n_boot"],
                n_perm=opts["n_perm"],
                seed=opts["seed"],
            )
            beats_chance = transfer.null.p_above < ALPHA
            if spec.criterion == "gate":
                transfer_ok = transfer.gate.passed and beats_chance
            else:
                transfer_ok = transfer.auc.auc >= GATE_MIN_AUC and beats_chance
            diagnosis = diagnose(
                train_y=spec.train.y_used,
                fresh_y=spec.fresh.y_used,
                cv_auc=cv.auc,
                fresh_auc=transfer.auc,
                asymmetry=transfer.asymmetry,
            )
        runs.append(ProbeRun(label, est.get_params(), cv, cv_ok, transfer, transfer_ok, diagnosis))
    selected = int(np.argmax([r.cv.auc.auc for r in runs]))
    return Trial(
        name=spec.name,
        features=spec.features,
        criterion=spec.criterion,
        train=spec.train.summary,
        fresh=None if spec.fresh is None else spec.fresh.summary,
        runs=tuple(runs),
        selected=selected,
    )


def _numbers(trial: Trial, use_transfer: bool) -> str:
    r = trial.best
    if use_transfer and r.transfer is not None:
        t = r.transfer
        a = t.asymmetry
        asym = "undefined" if a.value is None else f"{a.value:.3f} at threshold {a.threshold:.2f}"
        return (
            f"fresh AUC {t.auc} ({r.label}; {t.auc.n_pos}/{t.auc.n_pos + t.auc.n_neg} positive), "
            f"shuffled-label chance {t.null.null_mean:.3f} (p = {t.null.p_above:.3f}); "
            f"asymmetry {asym}; gate {'passed' if t.gate.passed else 'failed'}"
        )
    ctrl = f", control task {r.cv.control.mean:.3f}" if r.cv.control else ""
    return f"CV AUC {r.cv.auc} ({r.label}{ctrl})"


def _step(number: int, name: str, trials: list[Trial], use_transfer: bool = True) -> StepResult:
    hatch, title = ESCAPE_HATCHES[name], TITLES[name]
    if not trials:
        return StepResult(number, name, title, "not run", hatch, "Inputs not given.")
    if name == "cv":
        verdict = "pass" if trials[0].best.cv_passed else "fail"
        summary = _numbers(trials[0], use_transfer=False)
    elif name == "axes":
        passed = [t.name.removeprefix("axis:") for t in trials if t.verdict == "pass"]
        verdict = "pass" if passed else "fail"
        parts = [f"{t.name.removeprefix('axis:')}: {_auc_pair(t)}" for t in trials]
        summary = (
            f"{len(passed)} of {len(trials)} axes hold ({', '.join(passed) or 'none'}); "
            + "; ".join(parts)
        )
    else:
        verdict = trials[0].verdict
        summary = _numbers(trials[0], use_transfer)
    return StepResult(number, name, title, verdict, hatch, summary, tuple(t.name for t in trials))


def _auc_pair(t: Trial) -> str:
    r = t.best
    fresh = f", fresh {r.transfer.auc.auc:.3f}" if r.transfer is not None else ""
    return f"CV {r.cv.auc.auc:.3f}{fresh} ({t.verdict})"


def falsify(
    train_X: ArrayLike,
    train_y: ArrayLike,
    *,
    fresh_X: ArrayLike | None = None,
    fresh_y: ArrayLike | None = None,
    axes: Mapping[str, _Pair] | None = None,
    layers: _Pair | None = None,
    n_last_layers: int = 4,
    second_model: _Pair | None = None,
    second_model_labels: _Pair | None = None,
    probe: BaseEstimator | None = None,
    Cs: Sequence[float] = (1.0,),
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
    n_control: int = 5,
    blas_threads: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> FalsificationReport:
    """Run the five-step falsification pipeline on feature arrays.

    Every input is checked before any probe is fitted. Labels are 0/1 with
    NaN marking an unlabelled item (excluded, and counted in the report).

    Args:
        train_X: training features ``(n_train, d)``.
        train_y: training labels.
        fresh_X: fresh held-out features from an independent generator.
        fresh_y: fresh labels.
        axes: step 3: axis name -> (train labels, fresh labels or None), on
            the same features.
        layers: step 4: (train, fresh or None) features pooled over the last
            N layers, or ``(n, n_layers, d)`` arrays pooled here.
        n_last_layers: N for 3-D ``layers``.
        second_model: step 5: (train, fresh or None) features of a second model
            on the same items.
        second_model_labels: labels of the second model's outputs (default:
            ``train_y``/``fresh_y``).
        probe: an unfitted estimator (default :class:`LinearProbe`).
        Cs: regularisation settings, one run each (probes with a ``C`` only).
        folds: stratified CV folds.
        seed: seed of folds, bootstrap, shuffles.
        n_boot: bootstrap resamples per AUC interval.
        n_perm: label shuffles per fresh AUC and asymmetry null.
        n_control: shuffled-label CV runs (the control task) per setting.
        blas_threads: BLAS threads while fitting (restored afterwards). Probe
            fits are small matrix products where one thread is fastest and
            threads fight other processes for cores; None keeps the default.
        progress: called with a short message before each slow stage.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = rng.normal(size=(200, 8)) + np.outer(y, np.ones(8))
    >>> r = falsify(X[:100], y[:100], fresh_X=X[100:], fresh_y=y[100:],
    ...             n_boot=100, n_perm=100, n_control=1)
    >>> [s.verdict for s in r.steps], r.diagnosis.verdict
    (['pass', 'pass', 'not run', 'not run', 'not run'], 'pass')
    """
    if folds < 2:
        raise WorkbenchError(f"folds={folds}: stratified CV needs at least 2 folds")
    report = progress or (lambda _msg: None)
    keep = lambda X, _what: X  # noqa: E731
    if (fresh_X is None) != (fresh_y is None):
        raise WorkbenchError("fresh_X and fresh_y go together: pass both or neither")
    main = _TrialSpec(
        "main",
        "train features",
        "gate",
        *_pair((train_X, fresh_X), (train_y, fresh_y), "", folds, keep),
    )
    specs: dict[str, list[_TrialSpec]] = {"axes": [], "layers": [], "second_model": []}
    for name, (ty, fy) in (axes or {}).items():
        if fy is not None and fresh_X is None:
            raise WorkbenchError(
                f"axis {name!r} has fresh labels but no fresh features: pass fresh_X"
            )
        pair = _pair(
            (train_X, fresh_X if fy is not None else None), (ty, fy), f"axis {name!r}", folds, keep
        )
        specs["axes"].append(_TrialSpec(f"axis:{name}", "train features", "auc", *pair))
    if layers is not None:
        pool = lambda L, what: pool_layers(L, n_last_layers, what)  # noqa: E731
        pair = _pair(layers, (train_y, fresh_y), "layers", folds, pool)
        specs["layers"].append(
            _TrialSpec("layers", f"mean of last {n_last_layers} layers", "gate", *pair)
        )
    if second_model is not None:
        labels = second_model_labels or (train_y, fresh_y)
        pair = _pair(second_model, labels, "second-model", folds, keep)
        specs["second_model"].append(
            _TrialSpec("second_model", "second model's features", "gate", *pair)
        )

    settings = _settings(probe if probe is not None else LinearProbe(), Cs)
    opts = {
        "folds": folds,
        "seed": seed,
        "n_boot": n_boot,
        "n_perm": n_perm,
        "n_control": n_control,
    }
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        main_trial = _run_trial(main, settings, opts, report)
        done = {k: [_run_trial(s, settings, opts, report) for s in v] for k, v in specs.items()}
    has_fresh = main.fresh is not None
    steps = (
        _step(1, "cv", [main_trial]),
        _step(2, "fresh", [main_trial] if has_fresh else []),
        _step(3, "axes", done["axes"]),
        _step(4, "layers", done["layers"]),
        _step(5, "second_model", done["second_model"]),
    )
    trials = (main_trial, *done["axes"], *done["layers"], *done["second_model"])
    first = settings[0][1]
    config = {
        "probe": type(first).__name__,
        "probe_params": {k: v for k, v in first.get_params().items() if k != "C"},
        "Cs": [float(c) for c in Cs] if "C" in first.get_params() else None,
        **opts,
        "n_last_layers": n_last_layers if layers is not None else None,
    }
    return FalsificationReport(steps, trials, main_trial.best.diagnosis, config)

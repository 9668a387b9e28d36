"""The five-step falsification pipeline as one function.

Each step closes an escape hatch a probe result could hide behind; a result is
worth believing only if it passes all five. Steps whose inputs are absent are
``not run``. Every probe setting (e.g. each ``C``) runs on every trial; the
setting a verdict rests on is chosen by CV AUC, never by fresh AUC.

Each step's verdict rule and escape hatch live in :mod:`probes.steps`; the
failure taxonomy applied to step 2 in :mod:`probes.taxonomy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from threadpoolctl import threadpool_limits

from probes._checks import (
    as_features,
    as_labels,
    check_C,
    check_classes,
    check_rows,
    check_widths,
    pool_layers,
)
from probes.confound_inputs import Confound, check_confounds
from probes.confound_step import ConfoundStep, confound_step
from probes.crossval import control_task, cross_validate
from probes.disposition import GATE_MIN_AUC
from probes.estimators import LinearProbe
from probes.report import DataSummary, FalsificationReport, ProbeRun, Trial
from probes.steps import confound_result, step_result
from probes.taxonomy import ALPHA, CHANCE_AUC, CV_MIN_AUC, diagnose
from probes.transfer import fit_and_score
from workbench.core.errors import WorkbenchError

__all__ = ["check_resampling", "falsify"]

_Pair = tuple[ArrayLike, ArrayLike | None]


class _Set:
    """A checked (features, labels) pair: rows with a label are the ones used."""

    def __init__(self, X: ArrayLike, y: ArrayLike, what: str, folds: int | None) -> None:
        self.X = as_features(X, what)
        self.y = as_labels(y, what)
        check_rows(self.X, self.y, what)
        check_classes(self.y, what, folds)
        keep = ~np.isnan(self.y)
        self.keep = keep
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


MIN_BOOT = 10
"""Fewest bootstrap resamples :func:`falsify` accepts: the taxonomy reads the
interval's ends, and fewer resamples make them the point estimate or noise."""


def check_resampling(*, folds: int, n_boot: int, n_perm: int, n_control: int) -> None:
    """Raise :class:`WorkbenchError` for fold and resample counts that would make
    a verdict meaningless (the study's config checks its ``[probe]`` with this)."""
    if folds < 2:
        raise WorkbenchError(f"folds={folds}: stratified CV needs at least 2 folds")
    if n_boot < MIN_BOOT:
        raise WorkbenchError(
            f"n_boot={n_boot}: the AUC intervals need at least {MIN_BOOT} bootstrap resamples "
            "(default 1000)"
        )
    least = math.ceil(1 / ALPHA)  # the smallest p is 1 / (1 + n_perm); it must reach below ALPHA
    if n_perm < least:
        raise WorkbenchError(
            f"n_perm={n_perm}: with so few label shuffles the smallest p-value, "
            f"1/(1 + n_perm), cannot go below {ALPHA}, so no AUC could beat chance; "
            f"pass at least {least} (default 1000)"
        )
    if n_control < 0:
        raise WorkbenchError(f"n_control={n_control}: pass 0 (no control task) or more")


def _settings(probe: BaseEstimator, Cs: Sequence[float]) -> list[tuple[str, BaseEstimator]]:
    if "C" in probe.get_params():
        if not Cs:
            raise WorkbenchError("Cs is empty: pass at least one C, e.g. Cs=(1.0,)")
        return [(f"C={C:g}", clone(probe).set_params(C=check_C(C))) for C in Cs]
    if tuple(Cs) != (1.0,):
        raise WorkbenchError(
            f"Cs={list(Cs)} but {type(probe).__name__} has no C parameter: drop Cs (--C) "
            "or use the linear probe"
        )
    return [(type(probe).__name__, clone(probe))]


def _as_given(X: ArrayLike, _what: str) -> ArrayLike:
    return X


def _run_trial(
    spec: _TrialSpec,
    settings: list[tuple[str, BaseEstimator]],
    opts: dict[str, int],
    progress: Callable[[str], None],
) -> Trial:
    X, y = spec.train.X_used, spec.train.y_used
    folds, seed = opts["folds"], opts["seed"]
    cvs = []
    for label, est in settings:
        progress(f"{spec.name}: {label}: {folds}-fold CV")
        cvs.append(
            cross_validate(
                est, X, y, folds=folds, seed=seed, n_boot=opts["n_boot"],
                n_perm=opts["n_perm"], n_control=0,
            )
        )  # fmt: skip
    selected = int(np.argmax([cv.auc.auc for cv in cvs]))
    if opts["n_control"] > 0:
        label, est = settings[selected]
        progress(f"{spec.name}: {label}: control task ({opts['n_control']} label shuffles)")
        control = control_task(est, X, y, folds=folds, seed=seed, n_control=opts["n_control"])
        cvs[selected] = replace(cvs[selected], control=control)
    runs = []
    for (label, est), cv in zip(settings, cvs, strict=True):
        cv_ok = cv.auc.auc >= CV_MIN_AUC and cv.auc.lo > CHANCE_AUC
        cv_ok = cv_ok and (cv.null is None or cv.null.p_above < ALPHA)
        transfer = transfer_ok = diagnosis = None
        if spec.fresh is not None:
            progress(f"{spec.name}: {label}: fit on train, score fresh")
            transfer = fit_and_score(
                est, X, y, spec.fresh.X_used, spec.fresh.y_used,
                n_boot=opts["n_boot"], n_perm=opts["n_perm"], seed=seed,
            )  # fmt: skip
            beats_chance = transfer.null.p_above < ALPHA
            if spec.criterion == "gate":
                transfer_ok = transfer.gate.passed and beats_chance
            else:
                transfer_ok = transfer.auc.auc >= GATE_MIN_AUC and beats_chance
            diagnosis = diagnose(
                train_y=y,
                fresh_y=spec.fresh.y_used,
                cv_auc=cv.auc,
                fresh_auc=transfer.auc,
                asymmetry=transfer.asymmetry,
            )
        runs.append(ProbeRun(label, est.get_params(), cv, cv_ok, transfer, transfer_ok, diagnosis))
    return Trial(
        name=spec.name,
        features=spec.features,
        criterion=spec.criterion,
        train=spec.train.summary,
        fresh=None if spec.fresh is None else spec.fresh.summary,
        runs=tuple(runs),
        selected=selected,
    )


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
    confounds: Mapping[str, Confound | tuple[Any, ...]] | None = None,
    erase_confounds: bool = True,
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
        confounds: step 6: name -> :class:`~probes.confound_inputs.Confound`
            (or ``(train values, fresh values[, "num"|"cat"])``), one value per
            item of the train and fresh sets; needs the fresh set.
        erase_confounds: run LEACE erasure in step 6 (imports torch).
        probe: an unfitted estimator (default :class:`LinearProbe`).
        Cs: regularisation settings, one run each (probes with a ``C`` only).
        folds: stratified CV folds.
        seed: seed of folds, bootstrap, shuffles.
        n_boot: bootstrap resamples per AUC interval.
        n_perm: label shuffles per AUC null (CV and fresh) and asymmetry null.
        n_control: shuffled-label CV refits (the control task), run for the
            setting chosen by CV in each trial.
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
    (['pass', 'pass', 'not run', 'not run', 'not run', 'not run'], 'pass')
    """
    check_resampling(folds=folds, n_boot=n_boot, n_perm=n_perm, n_control=n_control)
    if isinstance(n_last_layers, bool) or not isinstance(n_last_layers, int) or n_last_layers < 1:
        raise WorkbenchError(f"n_last_layers={n_last_layers!r} must be an integer >= 1 (--last-n)")
    report = progress or (lambda _msg: None)
    if (fresh_X is None) != (fresh_y is None):
        raise WorkbenchError("fresh_X and fresh_y go together: pass both or neither")
    main = _TrialSpec(
        "main",
        "train features",
        "gate",
        *_pair((train_X, fresh_X), (train_y, fresh_y), "", folds, _as_given),
    )
    checked: dict[str, Confound] = {}
    if confounds:
        if main.fresh is None:
            raise WorkbenchError(
                f"confounds ({', '.join(confounds)}) need the fresh set: the step fits on train "
                "and tests on fresh, so pass fresh_X and fresh_y"
            )
        checked = check_confounds(confounds, main.train.X.shape[0], main.fresh.X.shape[0])
    specs: dict[str, list[_TrialSpec]] = {"axes": [], "layers": [], "second_model": []}
    for name, (ty, fy) in (axes or {}).items():
        if fy is not None and fresh_X is None:
            raise WorkbenchError(
                f"axis {name!r} has fresh labels but no fresh features: pass fresh_X"
            )
        pair = _pair(
            (train_X, fresh_X if fy is not None else None),
            (ty, fy),
            f"axis {name!r}",
            folds,
            _as_given,
        )
        specs["axes"].append(_TrialSpec(f"axis:{name}", "train features", "auc", *pair))
    if layers is not None:

        def pool(L: ArrayLike, what: str) -> ArrayLike:
            return pool_layers(L, n_last_layers, what)

        pair = _pair(layers, (train_y, fresh_y), "layers", folds, pool)
        shape = np.shape(layers[0])
        what = (
            f"mean of last {n_last_layers} of {shape[1]} layers"
            if len(shape) == 3
            else "layer features pooled by the caller"
        )
        specs["layers"].append(_TrialSpec("layers", what, "gate", *pair))
    if second_model is not None:
        labels = second_model_labels or (train_y, fresh_y)
        pair = _pair(second_model, labels, "second-model", folds, _as_given)
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
        sixth = None
        if checked and main.fresh is not None:
            report(f"main: confound step ({', '.join(checked)})")
            sixth = _confounds(main, main_trial, settings, checked, opts, erase_confounds)
    has_fresh = main.fresh is not None
    fresh_step = step_result(2, "fresh", [main_trial] if has_fresh else [])
    steps = (
        step_result(1, "cv", [main_trial]),
        fresh_step,
        step_result(3, "axes", done["axes"]),
        step_result(4, "layers", done["layers"]),
        step_result(5, "second_model", done["second_model"]),
        confound_result(
            sixth, "No confounds given." if has_fresh else "No fresh set given.", fresh_step
        ),
    )
    trials = (main_trial, *done["axes"], *done["layers"], *done["second_model"])
    first = settings[0][1]
    config = {
        "probe": type(first).__name__,
        "probe_params": {k: v for k, v in first.get_params().items() if k != "C"},
        "Cs": [float(c) for c in Cs] if "C" in first.get_params() else None,
        **opts,
        "n_last_layers": n_last_layers if layers is not None and np.ndim(layers[0]) == 3 else None,
    }
    config["confounds"] = {k: c.kind for k, c in checked.items()} or None
    config["erase_confounds"] = erase_confounds if checked else None
    return FalsificationReport(steps, trials, main_trial.best.diagnosis, config, sixth)


def _confounds(
    main: _TrialSpec,
    trial: Trial,
    settings: list[tuple[str, BaseEstimator]],
    confounds: dict[str, Confound],
    opts: dict[str, int],
    erase: bool,
) -> ConfoundStep:
    """Step 6 on the main trial's chosen setting (its out-of-fold and fresh scores)."""
    assert main.fresh is not None and trial.best.transfer is not None
    data = {
        "X": main.train.X_used, "y": main.train.y_used,
        "Xf": main.fresh.X_used, "yf": main.fresh.y_used,
        "oof": np.asarray(trial.best.cv.scores), "pf": np.asarray(trial.best.transfer.scores),
    }  # fmt: skip
    return confound_step(
        data, confounds, estimator=settings[trial.selected][1],
        train_keep=main.train.keep, fresh_keep=main.fresh.keep,
        folds=opts["folds"], seed=opts["seed"], n_boot=opts["n_boot"], n_perm=opts["n_perm"],
        erase=erase,
    )  # fmt: skip

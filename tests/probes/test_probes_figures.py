"""Every figure renders and saves as standalone HTML."""

import numpy as np
import plotly.graph_objects as go
import pytest

from probes import falsify
from probes.figures import (
    auc_collapse_figure,
    axis_bars_figure,
    depth_curve_figure,
    disposition_figure,
    pca_figure,
    report_figures,
    roc_figure,
    save_html,
    trial_roc_figure,
)
from probes.metrics import auc_with_ci


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y, yf = rng.integers(0, 2, 120), rng.integers(0, 2, 80)
    X = rng.normal(size=(120, 10)) + np.outer(y, np.eye(10)[0])
    Xf = rng.normal(size=(80, 10)) + np.outer(yf, np.eye(10)[0])
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, axes={"a": (y, yf), "b": (1 - y, 1 - yf)},
                n_boot=100, n_perm=100, n_control=1)  # fmt: skip
    return r, X, y, Xf, yf


def test_each_figure_writes_standalone_html(data, tmp_path):
    r, X, y, Xf, yf = data
    best = r.trial("main").best
    figs = {
        "collapse": auc_collapse_figure(r),
        "axes": axis_bars_figure(r),
        "pca": pca_figure(X, y, X_fresh=Xf, y_fresh=yf),
        "disposition": disposition_figure(best.transfer.disposition),
        "roc": trial_roc_figure(r.trial("main")),
        "roc_arrays": roc_figure({"a": (y, X[:, 0]), "b": (yf, Xf[:, 0])}),
        "depth": depth_curve_figure(
            np.arange(4),
            [auc_with_ci(y, X[:, 0] + k, n_boot=50) for k in range(4)],
            [0.5, 0.55, 0.6, 0.58],
        ),
    }
    for name, fig in figs.items():
        assert isinstance(fig, go.Figure)
        path = save_html(fig, tmp_path / f"{name}.html")
        html = path.read_text()
        assert html.lstrip().lower().startswith(("<html", "<!doctype html")) and "</html>" in html
        assert len(html) > 1_000_000  # plotly.js embedded: opens offline
    # chance and gate lines on the AUC figures
    shapes = [s.y0 for s in figs["collapse"].layout.shapes]
    assert 0.5 in shapes and 0.63 in shapes
    # a lighter variant links plotly.js instead
    assert (
        len(save_html(figs["pca"], tmp_path / "cdn.html", include_plotlyjs="cdn").read_text())
        < 200_000
    )


def test_figures_show_the_numbers(data):
    r, *_ = data
    best = r.trial("main").best
    roc = trial_roc_figure(r.trial("main"))
    assert f"AUC {best.cv.auc.auc:.3f}" in roc.data[0].name
    assert f"AUC {best.transfer.auc.auc:.3f}" in roc.data[1].name
    heat = disposition_figure(best.transfer.disposition)
    d = best.transfer.disposition
    z = [list(row) for row in heat.data[0].z]
    assert z == [[d.confident_right, d.hedged_right], [d.confident_wrong, d.hedged_wrong]]
    bars = axis_bars_figure(r)
    assert list(bars.data[0].x) == ["a", "b"]


def test_report_figures(data):
    r, X, y, Xf, yf = data
    figs = report_figures(r, train_X=X, train_y=y, fresh_X=Xf, fresh_y=yf)
    assert sorted(figs) == ["auc_collapse", "axes", "disposition", "pca", "roc"]


def test_confound_figure_draws_the_step_numbers():
    from probes.figures import report_figures

    rng = np.random.default_rng(0)
    z = rng.normal(size=240)
    y = (z + rng.normal(size=240) > 0).astype(int)
    X = rng.normal(size=(240, 6))
    X[:, 0] += 2 * z
    X[:, 1] += 2 * (y - 0.5)
    r = falsify(X[:120], y[:120], fresh_X=X[120:], fresh_y=y[120:], n_boot=50, n_perm=50,
                n_control=0, confounds={"length": (z[:120], z[120:])})  # fmt: skip
    fig = report_figures(r)["confounds"]
    bars = {t.name: t.y[0] for t in fig.data}
    res = r.confounds.result("length")
    assert bars == pytest.approx({
        "confounds alone": res.incremental.auc_confounds,
        "confounds + probe": res.incremental.auc_combined,
        "probe within strata": res.stratified.auc,
        "probe on erased features": res.erasure.fresh.auc,
    })  # fmt: skip
    assert r.confounds.verdict in fig.layout.title.text
    assert "confounds" not in report_figures(
        falsify(X[:120], y[:120], n_boot=50, n_perm=50, n_control=0)
    )

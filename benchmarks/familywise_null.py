"""Time the family-wise (max-statistic) null of a screen at the demo's scale.

The demo screens 30 layers of width 576 (the depth curve) and 270 heads of width 64
(the head probes), about 110 training and 100 fresh items; the target is under about a
minute per screen at 200 shuffles. Run: ``python benchmarks/familywise_null.py``.
"""

from __future__ import annotations

import time

import numpy as np

from probes import screen_null


def main() -> None:
    rng = np.random.default_rng(0)
    y, yf = rng.integers(0, 2, 110), rng.integers(0, 2, 100)
    for what, members, width in (("depth curve", 30, 576), ("heads", 270, 64)):
        train = [rng.normal(size=(110, width)) for _ in range(members)]
        fresh = [rng.normal(size=(100, width)) for _ in range(members)]
        start = time.perf_counter()
        screen_null(train, y, fresh, yf, n_perm=200)
        elapsed = time.perf_counter() - start
        print(f"{what}: {members} members of width {width}, 200 shuffles: {elapsed:.1f} s")


if __name__ == "__main__":
    main()

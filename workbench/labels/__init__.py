"""Where labels come from: task domains with checkers, the verbal classifier, coverage, the judge.

>>> from workbench.labels import check_item, classify_verbal, make_split
>>> item = make_split("train", 1, seed=0)[0]
>>> classify_verbal("I think it is Paris."), classify_verbal("Paris.")
('hedge', 'assert')
"""

from workbench.labels.coverage import coverage
from workbench.labels.domains import check_item, make_split
from workbench.labels.verbal import classify_verbal

__all__ = ["check_item", "classify_verbal", "coverage", "make_split"]

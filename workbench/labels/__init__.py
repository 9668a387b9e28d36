"""Where labels come from: task domains with checkers, the verbal classifier, coverage, the judge."""

"""The floor every other part stands on: errors, items, sites, the feature store, progress.

Nothing here imports torch or any other part of the project, so ``probes`` can use it
to read cached features with no model installed.
"""

"""The model side: loading, layouts, hooks, site readers, tokens, capture, generation, backends.

Imports only ``workbench.core`` from the rest of the project.
"""

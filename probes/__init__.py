"""The statistics side: probes, metrics, the falsification pipeline, the taxonomy, figures."""

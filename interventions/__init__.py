"""Attention-head attribution, o_proj tempering, the confidence-gated sidecar, steering."""

"""Generated conditions, their scorers, comparison of conditions, the LoRA training library."""

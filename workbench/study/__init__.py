"""The study: one command runs the honest-falsification study and writes a report."""

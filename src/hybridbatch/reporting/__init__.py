"""Reporting: loading results for the notebooks, the significance marks, LaTeX tables, training curves."""

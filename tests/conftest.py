"""What several test files share."""

#: The front matter of a MyST chapter notebook, for tests that write small chapters.
MYST_HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

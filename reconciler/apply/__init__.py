"""Apply room: the executor that walks each enrollment through its CPS change workflow.

The executor (``executor.py``) runs a plan's actions; the per-enrollment step machine
(``workflow.py``) follows a change by its ``allowedInput``; publishers (``publishers/``) put DV
challenges where the CA can see them; ``thirdparty.py`` checks and signs third-party
certificates locally before anything is uploaded.
"""

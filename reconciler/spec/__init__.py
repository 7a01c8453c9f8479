"""Desired state: enrollment spec models, YAML + jinja2 loading with line provenance, validation.

Modules: ``models`` (pydantic shapes), ``yamlsource`` (safe YAML with line marks), ``templating``
(sandboxed jinja2) with ``budget`` (its resource limits), ``loader`` (files -> LoadedSpecs),
``validate`` (rules) with ``certfiles`` (certificate files), ``hints`` (did-you-mean and message
wording), ``checks`` (hostname/email/... value checks).
Kept import-free so that ``reconciler.config`` can use ``yamlsource`` without cycles.
"""

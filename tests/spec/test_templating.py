from __future__ import annotations

import pytest

from reconciler.spec.templating import LineMap, TemplateProblem, line_map, render


def test_renders_variables_and_keeps_trailing_newline() -> None:
    assert render("cn: www.{{ domain }}\n", "f.yaml", {"domain": "example.com"}) == "cn: www.example.com\n"


@pytest.mark.parametrize("source,variables,line,fragment", [
    ("a: 1\nb: {{ nope }}\n", {}, 2, "'nope' is undefined"),
    ("a: 1\n\nb: {{ d.missing }}\n", {"d": {}}, 3, "has no attribute 'missing'"),
    ("a: 1\nb: {% if %}\n", {}, 2, "template syntax error"),
    ("a: {{ x\n", {}, 1, "template syntax error"),
    ("a: 1\nb: {{ ''.__class__.__mro__ }}\n", {}, 2, "unsafe"),
    ("a: 1\n{% include 'other.yaml' %}\n", {}, 2, "cannot include 'other.yaml'"),
    ("a: 1\nb: {{ 1 // 0 }}\n", {}, 2, "ZeroDivisionError"),
])
def test_errors_name_the_source_line(source: str, variables: dict[str, object], line: int, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        render(source, "f.yaml", variables)
    assert info.value.line == line and fragment in info.value.message


def test_line_map_is_exact_when_line_count_is_kept() -> None:
    source = "a: {{ x }}\nb: 2\n"
    rendered = render(source, "f", {"x": "long value"})
    line_map = LineMap(source, rendered)
    assert line_map.exact and line_map(2) == (2, True)


def test_line_map_aligns_around_loops() -> None:
    source = "a: 1\nb:\n{% for h in hs %}\n  - {{ h }}\n{% endfor %}\nc: {{ y }}\nd: 4\n"
    rendered = render(source, "f", {"hs": ["p", "q", "r"], "y": 3})
    out = rendered.splitlines()
    line_map = LineMap(source, rendered)
    assert not line_map.exact
    mapped = {text: line_map(i + 1) for i, text in enumerate(out)}
    assert mapped["a: 1"] == (1, True) and mapped["c: 3"] == (6, True) and mapped["d: 4"] == (7, True)
    assert mapped["  - p"] == (4, True)  # the loop body, exactly
    assert mapped["  - r"] == (4, False)  # later iterations: the body line, approximately


LOOP = """\
{% for r in regions %}
- name: www-{{ r }}
  type: dv
  sans: ["{{ r }}.example.com"]
{%- if r == "us" %}
  sni_only: true
{%- endif %}
  geo: core
{% endfor %}
- name: other
  type: dv
"""


def test_every_iteration_of_a_loop_maps_to_the_body_line_that_made_it() -> None:
    variables = {"regions": ["eu", "us", "ap"]}
    rendered = render(LOOP, "f.yaml", variables)
    mapper = line_map(LOOP, rendered, "f.yaml", variables)
    mapped = [(text, *mapper(i + 1)) for i, text in enumerate(rendered.splitlines())]
    body = [("- name: www-{r}", 2, True), ("  type: dv", 3, True), ('  sans: ["{r}.example.com"]', 4, True)]
    tail = [("  geo: core", 8, True), ("", 9, True)]  # the empty line is what {% endfor %} leaves
    expected = [("", 1, True)]
    for r in variables["regions"]:
        expected += [(t.format(r=r), n, e) for t, n, e in body]
        expected += [("  sni_only: true", 6, True)] if r == "us" else []
        expected += [(t.format(r=r), n, e) for t, n, e in tail]
    expected += [("- name: other", 10, True), ("  type: dv", 11, True)]
    assert mapped == expected


def test_a_template_the_marks_would_change_falls_back_to_alignment() -> None:
    source = "{% set x %}\nab\n{% endset %}\nlen: {{ x | length }}\n{% for i in [1, 2] %}\n- {{ i }}\n{% endfor %}\n"
    rendered = render(source, "f.yaml", {})
    assert "len: 4" in rendered
    mapper = line_map(source, rendered, "f.yaml", {})
    assert isinstance(mapper, LineMap)  # the traced rendering would measure the marks too


@pytest.mark.parametrize("source,line,column,fragment", [
    ("name: x\ncommon_name: {{ foo ! }}\n", 2, 21, "unexpected char '!'"),
    ("a: 1\nb: 2\nc: {{ 'x }}\n", 3, 7, "unexpected char \"'\""),
    ("name: x\ncommon_name: {{ foo bar }}\n", 2, 21, "got 'bar'"),
])
def test_syntax_errors_give_line_and_column_not_an_offset(source: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        render(source, "f.yaml", {})
    assert (info.value.line, info.value.column) == (line, column)
    assert fragment in info.value.message and " at " not in info.value.message

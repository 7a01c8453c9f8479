from __future__ import annotations

import pytest

from reconciler.spec.templating import LineMap, TemplateProblem, render


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

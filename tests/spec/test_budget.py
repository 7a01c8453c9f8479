"""The template budget directly: what it weighs and what it lets through."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from reconciler.spec.budget import MAX_TEXT, BoundedEnvironment, _weight


def _render(source: str) -> str:
    return BoundedEnvironment().from_string(source).render()


def test_weight_counts_shared_parts_every_time_and_stops_early() -> None:
    inner = ["abc"] * 10
    assert _weight(inner) == 11 + 30
    outer = [inner] * 10
    assert _weight(outer) == 11 + 10 * 41
    laughs: list[object] = ["lol"]
    for _ in range(30):  # 10**30 when printed; weighing must stop right past the limit
        laughs = [laughs] * 10
    assert MAX_TEXT < _weight(laughs) < 2 * MAX_TEXT


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**9 }}", "{{ 7 ** 1000000 }}", "{{ 'x'|center(10**9) }}", "{{ '%0999999d' % 1 }}",
    "{{ '{:>99999}'.format(1) }}", "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{{ ''.__class__ }}", "{{ ['a']|map(attribute='__class__')|list }}",
    "{% set a = ['lol'] * 10 %}" + "{% set a = [a, a, a, a, a, a, a, a, a, a] %}" * 6 + "{{ a }}",
    "{% set s = 'xxxxxxxx' %}" + "{% set s = s + s %}" * 40,
    "{% set a = 'a' * 1000000 %}{{ a.replace('a', 'b' * 1000000)|length }}",
    "{% set a = 'a' * 1000000 %}{{ a|replace('a', 'b' * 1000000)|length }}",
    "{% set a = 'a' * 1000000 %}{{ a.translate({97: 'b' * 1000000})|length }}",
    "{{ range(1000)|join('x' * 500000) }}", "{{ [1]|batch(1000000000, 'x')|list }}", "{{ [1]|slice(1000000000)|list }}",
    "{{ [1]|tojson(1000000000) }}", "{{ ('a ' * 200000)|wordwrap(1, true, 'x' * 500) }}",
    "{% set l = [1] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}",
])
def test_bombs_and_escapes_raise_security_error(source: str) -> None:
    with pytest.raises(SecurityError):
        _render(source)


def test_ordinary_templates_render() -> None:
    assert _render("{% for i in range(3) %}h{{ i }}.{{ 'Example'|lower }}.com {% endfor %}") == (
        "h0.example.com h1.example.com h2.example.com ")
    assert _render("{{ 1 + 2 }} {{ 'a' + 'b' }} {{ ([1] + [2])|length }}") == "3 ab 2"
    assert _render("{{ '%s-%02d'|format('a', 3) }} {{ '{}.{}'.format('a', 'b') }} {{ [1, 2]|join(',') }} {{ 'a' ~ 1 }}"
                   ) == "a-03 a.b 1,2 a1"

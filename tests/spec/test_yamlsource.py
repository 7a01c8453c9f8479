from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.spec.yamlsource import MarkedDict, MarkedList, YamlProblem, load_documents, lookup


def test_marks_every_key_and_item() -> None:
    [(doc, line)] = load_documents("a: 1\nb:\n  c: x\n  d:\n    - p\n    - q\n", "f.yaml")
    assert line == 1 and isinstance(doc, MarkedDict) and isinstance(doc["b"]["d"], MarkedList)
    assert doc.key_marks["b"].line == 2 and doc["b"].key_marks["c"].line == 3
    assert doc["b"]["d"].item_marks[1].line == 6 and doc["b"]["d"].item_marks[1].file == "f.yaml"


def test_lookup_falls_back_to_the_deepest_existing_node() -> None:
    [(doc, _)] = load_documents("x: 0\nb:\n  c: [1, 2,\n      3]\n", "f.yaml")
    assert lookup(doc, ("b", "c", 2)).line == 4  # type: ignore[union-attr]
    assert lookup(doc, ("b", "missing", 0)).line == 2  # type: ignore[union-attr]
    assert lookup(doc, ("b", "c", 9)).line == 3  # type: ignore[union-attr]
    assert lookup({"plain": 1}, ("plain",)) is None


def test_multiple_documents_and_empty_ones() -> None:
    docs = load_documents("---\na: 1\n---\n---\n- b: 2\n...\n", "f.yaml")
    assert [d for d, _ in docs] == [{"a": 1}, [{"b": 2}]]
    assert [line for _, line in docs] == [2, 5]


@pytest.mark.parametrize("text,line,fragment", [
    ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first defined on line 1)"),
    ("x:\n  y: 1\n  y: 2\n", 3, "duplicate key 'y'"),
    ("a: !!python/name:os.system\n", 1, "is not allowed"),
    ("a: !!binary aGVsbG8=\n", 1, "is not allowed"),
    ("a: !custom x\n", 1, "is not allowed"),
    ("? [1, 2]\n: x\n", 1, "mapping keys must be plain scalars"),
    ("a: [1,\nb: 2\n", 3, "while parsing a flow sequence that starts on line 1"),
    ("a: 'unterminated\n", 2, "found unexpected end of stream"),
])
def test_refusals_carry_lines(text: str, line: int, fragment: str) -> None:
    with pytest.raises(YamlProblem) as info:
        load_documents(text, "f.yaml")
    assert info.value.line == line and fragment in info.value.message


def test_yaml_1_2_booleans_and_strings_stay_strings() -> None:
    [(doc, _)] = load_documents("a: on\nb: off\nc: yes\nd: NO\ne: true\nf: False\ng: 2024-01-02\nh: 1.5\n", "f")
    assert doc == {"a": "on", "b": "off", "c": "yes", "d": "NO", "e": True, "f": False, "g": "2024-01-02",
                   "h": 1.5}


def test_merge_keys_work_and_explicit_keys_win() -> None:
    [(doc, _)] = load_documents("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "f")
    assert doc["c"] == {"x": 1, "y": 3}


def test_alias_expansion_is_capped() -> None:
    text = "a: &a [x]\n" + "".join(f"k{i}: [{', '.join(['*a'] * 10)}]\n" for i in range(11))
    with pytest.raises(YamlProblem, match="more than 100 aliases"):
        load_documents(text, "f")


def test_line_map_translates_marks_and_errors() -> None:
    [(doc, line)] = load_documents("a: 1\nb: 2\n", "f", lambda n: (n + 10, n == 1))
    assert line == 11 and doc.key_marks["b"].line == 12 and doc.key_marks["b"].approximate
    with pytest.raises(YamlProblem) as info:
        load_documents("a: 1\na: 2\n", "f", lambda n: (n + 10, False))
    assert info.value.line == 12 and "line approximate" in info.value.message


def test_depth_values_and_alias_expansion_are_capped() -> None:
    from reconciler.spec.yamlsource import MAX_DEPTH, MAX_VALUES

    with pytest.raises(YamlProblem, match=f"nested more than {MAX_DEPTH} levels") as deep:
        load_documents("a: 1\nb: " + "[" * 500 + "]" * 500 + "\n", "f.yaml")
    assert deep.value.line == 2
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True))
    with pytest.raises(YamlProblem, match="expands to more than") as bomb:
        load_documents(laughs, "f.yaml")
    assert bomb.value.line == 5  # 'e' is the first anchor past the cap
    with pytest.raises(YamlProblem, match=f"more than {MAX_VALUES} values in one file"):
        load_documents("[" + "1," * MAX_VALUES + "1]\n", "f.yaml")


def test_read_source_refuses_what_is_not_small_utf8_text(tmp_path: Path) -> None:
    from reconciler.spec.yamlsource import read_source

    cases = {b"\xef\xbb\xbfa: 1\n": None, b"a: 1\nb: caf\xe9\n": (2, "not UTF-8: byte 0xe9"),
             "a: 1\n".encode("utf-16"): (1, "UTF-16"), b"a: 1\n\nb: \x00\n": (3, "NUL byte"),
             "a: 1\n# x\u2028y: 2\n".encode(): (2, "U+2028 is an invisible line break"),
             b"# x\n" * 300: (257, "larger than 1 KiB")}
    for data, expected in cases.items():
        path = tmp_path / "f.yaml"
        path.write_bytes(data)
        if expected is None:
            assert read_source(path) == "a: 1\n"  # the UTF-8 byte-order mark is dropped
            continue
        with pytest.raises(YamlProblem, match=re.escape(expected[1])) as problem:
            read_source(path, limit=1024)
        assert problem.value.line == expected[0]

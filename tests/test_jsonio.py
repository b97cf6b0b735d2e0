import pytest

from minimath.jsonio import JsonRecordError, json_records


def test_array_and_concatenated_objects():
    assert list(json_records('[{"a": 1}, {"a": 2}]')) == [{"a": 1}, {"a": 2}]
    assert list(json_records('{"a": 1}\n{\n "a": 2\n}\n')) == [{"a": 1}, {"a": 2}]


def test_malformed_names_the_line():
    with pytest.raises(JsonRecordError, match="line 3: malformed JSON"):
        list(json_records('{"a": 1}\n{"a": 2}\n{"a": \n'))

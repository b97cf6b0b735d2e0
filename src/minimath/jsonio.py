"""Reading JSON record files: an array, or concatenated objects (how the original Math23k files are written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class JsonRecordError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line, self.message = line, message


def json_records(text: str) -> Iterator[Any]:
    """Each record of a JSON array or of back-to-back JSON values; JsonRecordError names the failing line."""
    try:
        parsed = json.loads(text)
        yield from (parsed if isinstance(parsed, list) else [parsed])
        return
    except json.JSONDecodeError:
        pass
    decoder, pos = json.JSONDecoder(), 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,[]":
            pos += 1
        if pos >= len(text):
            return
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise JsonRecordError(text.count("\n", 0, pos) + 1, f"malformed JSON ({err.msg})") from None
        yield record

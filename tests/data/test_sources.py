import json

import pytest
from test_formatters import FORMATTER_OF, RECORDS  # one record per public schema

from minimath.data.sources import FileSource, HubSource, SourceStats, SyntheticSource
from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.errors import UserError


def collect(source):
    stats = SourceStats(source.name)
    docs = [text for text, _ in source.documents(stats)]
    stats.kept = len(docs)
    return docs, stats


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_hub_source_through_load_dataset_on_local_gsm8k(tmp_path):
    """The real `datasets.load_dataset` path, on a local file in GSM8K's published jsonl format."""
    write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"What is {i}+1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"} for i in range(5)],
    )
    docs, stats = collect(HubSource("gsm8k", "json", data_files=str(tmp_path / "train.jsonl"), formatter="gsm8k"))
    assert len(docs) == 5 and docs[2].endswith("The answer is 3.")
    assert stats.read == 5 and not stats.skipped


def test_hub_source_parquet_and_unloadable(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["first document here", "second document here"]}), tmp_path / "d.parquet")
    docs, _ = collect(HubSource("p", "parquet", data_files=str(tmp_path / "d.parquet")))
    assert docs == ["first document here", "second document here"]
    docs, _ = collect(FileSource("p", [str(tmp_path / "*.parquet")], format="parquet"))
    assert len(docs) == 2
    with pytest.raises(UserError, match="source broken: cannot load"):
        collect(HubSource("broken", "json", data_files=str(tmp_path / "missing.jsonl")))


def test_bad_input_is_skipped_and_counted_with_the_first_offender(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"text": "good one"}).encode(),
        b'{"text": "broken',
        json.dumps({"body": "x"}).encode(),
        b'{"text": "\xff\xfe bad bytes"}',
        json.dumps({"text": "good two"}).encode(),
        b"[1, 2]",
        b"",
    ]
    path.write_bytes(b"\n".join(lines))
    docs, stats = collect(FileSource("mixed", [str(path)]))
    assert docs == ["good one", "good two"]
    assert stats.skipped == {
        "malformed JSON": 1,
        "missing field 'text'": 1,
        "not UTF-8": 1,
        "record is not an object": 1,
    }
    assert stats.first_offender["malformed JSON"] == f"{path}:2"
    assert "skipped 1 (malformed JSON; first at" in stats.summary()


def test_math23k_json_concatenated_objects_and_array(tmp_path):
    record = {
        "id": "1",
        "original_text": "小明有5个苹果，又买了3个，一共几个？",
        "segmented_text": "",
        "equation": "x=5+3",
        "ans": "8",
    }
    (tmp_path / "a.json").write_text(json.dumps([record, record], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "b.json").write_text("\n".join(json.dumps(r, ensure_ascii=False, indent=1) for r in [record] * 3))
    docs, _ = collect(FileSource("m", [str(tmp_path / "*.json")], format="json", formatter="math23k"))
    assert len(docs) == 5 and docs[0].endswith("答：8")


def test_txt_files_by_file_and_paragraph(tmp_path):
    (tmp_path / "a.txt").write_text("para one\n\npara two", encoding="utf-8")
    assert collect(FileSource("t", [str(tmp_path / "a.txt")], format="txt"))[0] == ["para one\n\npara two"]
    docs, _ = collect(FileSource("t", [str(tmp_path / "a.txt")], format="txt", txt_split="paragraph"))
    assert docs == ["para one", "para two"]


def test_missing_files_and_bad_format_are_errors(tmp_path):
    with pytest.raises(UserError, match="no files match"):
        collect(FileSource("x", [str(tmp_path / "none*.jsonl")]))
    (tmp_path / "a.csv").write_text("a,b")
    with pytest.raises(UserError, match="format must be"):
        collect(FileSource("x", [str(tmp_path / "a.csv")], format="csv"))


def test_synthetic_source_is_finite_and_seeded():
    a, _ = collect(SyntheticSource("arith", ArithmeticSource(), documents_count=7, seed=3))
    b, _ = collect(SyntheticSource("arith", ArithmeticSource(), documents_count=7, seed=3))
    assert len(a) == 7 and a == b
    assert collect(SyntheticSource("arith", ArithmeticSource(), documents_count=7, seed=4))[0] != a


@pytest.mark.parametrize("schema", sorted(RECORDS))
def test_every_formatter_on_a_local_file_in_its_schema(schema, tmp_path):
    """Each public schema written as a jsonl file and read through `datasets.load_dataset("json", ...)`."""
    record, options, expected = RECORDS[schema]
    write_jsonl(tmp_path / "data.jsonl", [record, record])
    source = HubSource(
        schema,
        "json",
        data_files=str(tmp_path / "data.jsonl"),
        formatter=FORMATTER_OF.get(schema, schema),
        formatter_options=options,
    )
    docs, stats = collect(source)
    assert docs == [expected, expected] and not stats.skipped

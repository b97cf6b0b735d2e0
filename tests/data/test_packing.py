import torch

from minimath.data.packing import pack_documents


def test_windows_cover_the_stream_with_eot_separators():
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
    windows = list(pack_documents(docs, seq_len=4, eot_id=0))
    stream = [1, 2, 3, 0, 4, 5, 0, 6, 7, 8, 9, 0, 10, 0]
    assert len(windows) == (len(stream) - 1) // 4
    for i, w in enumerate(windows):
        assert w["input_ids"].tolist() == stream[4 * i: 4 * i + 4]
        assert w["targets"].tolist() == stream[4 * i + 1: 4 * i + 5]
    # every position of the stream except the first is a target exactly once
    targets = torch.cat([w["targets"] for w in windows]).tolist()
    assert targets == stream[1: 1 + len(targets)]


def test_long_document_spans_several_windows():
    windows = list(pack_documents([list(range(1, 20))], seq_len=5, eot_id=0))
    assert len(windows) == 3 and all(w["input_ids"].shape == (5,) for w in windows)

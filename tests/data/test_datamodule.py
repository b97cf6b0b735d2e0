from itertools import islice

import torch

from minimath.data.datamodule import StreamDataModule
from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.tokenizer import CompactTokenizer, get_tokenizer


def make_datamodule(num_workers=0, seed=5):
    dm = StreamDataModule(ArithmeticSource(), seq_len=32, micro_batch=4, seed=seed, num_workers=num_workers,
                          vocab_sample_docs=100)
    dm.set_tokenizer(CompactTokenizer.from_corpus(get_tokenizer("qwen"), dm.vocab_corpus()))
    return dm


def batches(dm, n):
    return list(islice(iter(dm.train_dataloader()), n))


def test_batches_are_shaped_shifted_and_deterministic():
    a, b = batches(make_datamodule(), 3), batches(make_datamodule(), 3)
    for x, y in zip(a, b):
        assert x["input_ids"].shape == (4, 32)
        assert torch.equal(x["input_ids"], y["input_ids"])
        assert torch.equal(x["input_ids"][:, 1:], x["targets"][:, :-1])
    assert not torch.equal(a[0]["input_ids"], batches(make_datamodule(seed=6), 1)[0]["input_ids"])


def test_vocab_sample_covers_the_stream():
    dm = make_datamodule()
    for batch in batches(dm, 20):
        assert int(batch["input_ids"].max()) < dm.tokenizer.unk_id


def test_workers_read_different_sequences():
    got = batches(make_datamodule(num_workers=2), 4)
    seqs = {tuple(row.tolist()) for b in got for row in b["input_ids"]}
    assert len(seqs) == 16

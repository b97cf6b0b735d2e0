"""Per-stage mixed streams: disjoint ranks and workers, and exact resume through Lightning checkpoints."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from minimath.data.datamodule import DataPositionTracker, MixtureBatches
from minimath.data.prepare import prepare
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.training import build_datamodule, build_model_config, build_tokenizer

from conftest import TINY_TRAIN_OVERRIDES, compose_config

NO_STAGE = [o for o in TINY_TRAIN_OVERRIDES if o != "stage=1"]


@pytest.fixture
def setup(tmp_path, data_root):
    def make(stage="3", micro_batch=4, num_workers=0):
        cfg = compose_config(
            NO_STAGE
            + [
                f"paths.data_root={data_root}",
                f"stage={stage}",
                f"hardware.micro_batch={micro_batch}",
                f"hardware.num_workers={num_workers}",
            ],
            tmp_path,
        )
        manifest = prepare(cfg.data, log=lambda *_: None)
        tokenizer = build_tokenizer(cfg.model, manifest)
        return cfg, tokenizer, build_datamodule(cfg, manifest, tokenizer)

    return make


def take(iterable, n):
    it = iter(iterable)
    return [next(it) for _ in range(n)]


def test_batches_are_shifted_labelled_and_remapped(setup):
    cfg, tokenizer, dm = setup()
    batch = take(MixtureBatches(dm.plan, 0, 4, 0, 1, dm.remap), 1)[0]
    assert batch["input_ids"].shape == (4, cfg.model.max_seq_len)
    assert torch.equal(batch["input_ids"][:, 1:], batch["targets"][:, :-1])
    assert int(batch["input_ids"].max()) < tokenizer.unk_id  # the compact vocabulary covers the prepared data
    assert set(batch["source"].tolist()) <= set(range(len(dm.source_names)))
    assert dm.source_names == sorted(["general_en", "general_zh", "math_text", "word_problems_cot"])
    assert int(batch["position"]) == 4


def test_ranks_split_the_stream_without_overlap(setup):
    _, _, dm = setup()
    single = take(MixtureBatches(dm.plan, 0, 4, 0, 1, dm.remap), 4)
    rank0 = take(MixtureBatches(dm.plan, 0, 4, 0, 2, dm.remap), 2)
    rank1 = take(MixtureBatches(dm.plan, 0, 4, 1, 2, dm.remap), 2)
    for j in range(2):
        assert torch.equal(rank0[j]["input_ids"], single[2 * j]["input_ids"])
        assert torch.equal(rank1[j]["input_ids"], single[2 * j + 1]["input_ids"])
        assert int(rank0[j]["position"]) == int(rank1[j]["position"]) == 8 * (j + 1)


def test_workers_produce_the_same_stream(setup):
    _, _, dm = setup()
    dataset = MixtureBatches(dm.plan, 0, 4, 0, 1, dm.remap)
    plain = take(DataLoader(dataset, batch_size=None), 6)
    workers = take(DataLoader(dataset, batch_size=None, num_workers=2), 6)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(plain, workers))
    assert len({tuple(b["input_ids"][0].tolist()) for b in workers}) == 6


class Recorder(L.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows.extend(batch["input_ids"].clone())


def fit(cfg, tokenizer, dm, max_steps, root, ckpt_path=None):
    torch.manual_seed(0)
    module = MiniMathModule(
        **module_hparams(
            build_model_config(cfg.model, tokenizer),
            {"lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1},
            tokenizer.state_dict(),
        )
    )
    recorder = Recorder()
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=root, every_n_train_steps=3, save_top_k=-1, filename="{step}"
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint, DataPositionTracker(), recorder],
        default_root_dir=root,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return recorder.rows


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.slow
def test_exact_resume_from_a_checkpoint(setup, tmp_path, num_workers):
    cfg, tok, dm = setup(num_workers=num_workers)
    uninterrupted = fit(cfg, tok, dm, 6, tmp_path / "a")

    cfg, tok, dm = setup(num_workers=num_workers)
    first = fit(cfg, tok, dm, 3, tmp_path / "b")
    cfg, tok, dm = setup(num_workers=num_workers)  # a fresh process would rebuild everything
    resumed = fit(cfg, tok, dm, 6, tmp_path / "b", ckpt_path=str(tmp_path / "b" / "step=3.ckpt"))
    assert dm.position == 6 * 4
    assert len(first) + len(resumed) == len(uninterrupted)
    assert all(torch.equal(a, b) for a, b in zip(first + resumed, uninterrupted))


@pytest.mark.slow
def test_resume_with_another_batch_size_neither_skips_nor_repeats(setup, tmp_path):
    cfg, tok, dm = setup(micro_batch=4)
    uninterrupted = fit(cfg, tok, dm, 6, tmp_path / "a")  # 24 sequences
    cfg, tok, dm = setup(micro_batch=4)
    first = fit(cfg, tok, dm, 3, tmp_path / "b")  # 12 sequences
    cfg, tok, dm = setup(micro_batch=2)
    resumed = fit(cfg, tok, dm, 9, tmp_path / "b", ckpt_path=str(tmp_path / "b" / "step=3.ckpt"))  # 6 more steps
    assert len(first) == 12 and len(resumed) == 12
    assert all(torch.equal(a, b) for a, b in zip(first + resumed, uninterrupted))


def test_decay_mix_takes_over_at_the_decay_start(tmp_path, data_root):
    """data.stages.N.decay_mix: the stage's mix before the decay's first sequence, the decay mixture after."""
    cfg = compose_config(
        NO_STAGE
        + [
            f"paths.data_root={data_root}",
            "stage=4",
            "hardware.micro_batch=4",
            "+data.stages.4.decay_mix=[{source: equations, share: 1.0}]",
        ],
        tmp_path,
    )
    manifest = prepare(cfg.data, log=lambda *_: None)
    dm = build_datamodule(cfg, manifest, build_tokenizer(cfg.model, manifest))
    equations = dm.source_names.index("equations")
    plain = [b["source"].tolist() for b in take(MixtureBatches(dm.plan, 0, 4, 0, 1, dm.remap), 6)]
    phased = [b["source"].tolist() for b in take(MixtureBatches(dm.plan, 0, 4, 0, 1, dm.remap, decay_start=10), 6)]
    flat_plain, flat_phased = sum(plain, []), sum(phased, [])
    assert flat_phased[:10] == flat_plain[:10]  # the stable phase is the stage's own stream
    assert flat_phased[10:] == [equations] * 14 and flat_plain[10:] != flat_phased[10:]
    dm.start_decay_mix(decay_start_tokens=5 * cfg.model.max_seq_len)
    assert dm.decay_start == 5 and dm.state_dict()["decay_start"] == 5
    from minimath.errors import UserError

    with pytest.raises(UserError, match="decay_mix is drawn during the LR decay"):
        dm.start_decay_mix(None)

import lightning as L
import torch
from test_lit_module import OPTIM, RecordingLogger, fixed_batches

from minimath.eval.callback import HeldoutEval
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.model import ModelConfig
from minimath.tokenizer import CompactTokenizer, get_tokenizer

from conftest import embedded_heldout


def fit_three_steps(module, callback, logger, **data) -> None:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, **data)


def test_heldout_eval_logs_accuracy_against_tokens_seen():
    tok = CompactTokenizer.from_corpus(get_tokenizer("qwen"), ["0123456789 +-×÷=/.\nSolve x"])
    cfg = ModelConfig(
        vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_kv_head=2, n_embd=16, ffn_hidden=32, max_seq_len=64
    )
    module = MiniMathModule(**module_hparams(cfg, dict(OPTIM), tok.state_dict()))
    logger = RecordingLogger()
    callback = HeldoutEval(
        every_n_steps=2, tasks=["arithmetic", "equations"], generators=embedded_heldout(), n=3, max_new_tokens=4
    )
    fit_three_steps(
        module, callback, logger, train_dataloaders=torch.utils.data.DataLoader(fixed_batches(cfg, 3), batch_size=None)
    )
    evals = [(step, m) for step, m in logger.records if "eval/arithmetic" in m]
    assert [step for step, _ in evals] == [2 * 32, 3 * 32]  # after step 2, and at the end of training
    assert all(0.0 <= m["eval/equations"] <= 1.0 for _, m in evals)
    assert module.model.training


class ProbeData(L.LightningDataModule):
    """A datamodule with one fixed probe source (`document_rows`) and random training batches."""

    def __init__(self, cfg, batches):
        super().__init__()
        self.rows = fixed_batches(cfg, 1, batch=4, seed=1)[0]
        self.batches = batches

    def document_rows(self, source, count):
        assert source == "probe"
        return self.rows["input_ids"][:count], self.rows["targets"][:count]

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.batches, batch_size=None)


def test_heldout_loss_at_start_measures_the_weights_before_the_first_update():
    from minimath.eval.callback import HeldoutLoss

    cfg = ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=2, n_embd=16, ffn_hidden=32, max_seq_len=64)
    module = MiniMathModule(**module_hparams(cfg, dict(OPTIM), None))
    data = ProbeData(cfg, fixed_batches(cfg, 3))
    before = HeldoutLoss(every_n_steps=1, sources=["probe"], documents=4)
    before.setup(type("Trainer", (), {"datamodule": data})(), module, "fit")
    expected = before._loss(module, *data.document_rows("probe", 4))  # the untrained weights' probe loss
    logger = RecordingLogger()
    callback = HeldoutLoss(every_n_steps=1, sources=["probe"], documents=4, at_start=True)
    fit_three_steps(module, callback, logger, datamodule=data)
    probes = [(step, m["eval/probe_loss"]) for step, m in logger.records if "eval/probe_loss" in m]
    assert [step for step, _ in probes] == [0, 32, 64, 96]  # before the first update, then after every step
    assert probes[0][1] == expected
    assert probes[-1][1] != expected

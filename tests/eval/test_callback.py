import lightning as L
import torch
from test_lit_module import OPTIM, RecordingLogger, fixed_batches

from minimath.eval.callback import HeldoutEval
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.model import ModelConfig
from minimath.tokenizer import CompactTokenizer, get_tokenizer

from conftest import embedded_heldout


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
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(fixed_batches(cfg, 3), batch_size=None))
    evals = [(step, m) for step, m in logger.records if "eval/arithmetic" in m]
    assert [step for step, _ in evals] == [2 * 32, 3 * 32]  # after step 2, and at the end of training
    assert all(0.0 <= m["eval/equations"] <= 1.0 for _, m in evals)
    assert module.model.training

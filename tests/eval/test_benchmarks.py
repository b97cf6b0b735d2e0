import hashlib

from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.eval.benchmarks import BENCHMARKS
from minimath.eval.prompts import PROMPT_STYLES, MultipleChoice
from minimath.eval.tasks import load_public_task
from minimath.tokenizer import CompactTokenizer, get_tokenizer


def test_every_public_task_config_names_a_benchmark_and_every_benchmark_a_prompt_style():
    formats = {c.format for c in map(OmegaConf.load, (CONF_DIR / "task").glob("*.yaml")) if "format" in c}
    assert formats == set(BENCHMARKS)
    for b in BENCHMARKS.values():
        assert isinstance(PROMPT_STYLES[b.prompt_style], MultipleChoice) == (b.kind == "choice")


def test_fixed_few_shot_files_load_in_their_benchmarks_format():
    for b in BENCHMARKS.values():
        if b.fixed_fewshot is not None:
            task = load_public_task(b.format, b.format, path=str(b.fixed_fewshot))
            assert task.docs and task.fewshot_source == f"fixed:{b.fixed_fewshot.name}"


def test_the_compact_vocabulary_keeps_the_same_protocol_tokens():
    """The default run's compact vocabulary (and so its golden losses) depends on exactly these ids."""
    kept = CompactTokenizer.keeping(get_tokenizer("qwen"), []).kept_ids.tolist()
    assert len(kept) == 267 and hashlib.sha256(str(kept).encode()).hexdigest()[:16] == "3d66a82b5aebecae"

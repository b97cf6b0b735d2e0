import hashlib
import json

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


# SVAMP as published (a JSON list; ids, bodies, equations and answers in the dataset's style, the last two made up
# for a body that ends with a period and a non-integer answer).
SVAMP = [
    {
        "ID": "chal-1",
        "Body": "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
        "Question": "How much do you have to pay to buy each pack?",
        "Equation": "( 76.0 - 25.0 )",
        "Answer": 51.0,
    },
    {
        "ID": "chal-2",
        "Body": "Dan had $ 3 left with him after he bought a candy bar. If he had a total of $ 4 at the start",
        "Question": "How much did the candy bar cost?",
        "Equation": "( 4.0 - 3.0 )",
        "Answer": 1.0,
    },
    {
        "ID": "x-1",
        "Body": "A rope of 9 meters is cut into 2 equal pieces.",
        "Question": "How long is each piece?",
        "Equation": "( 9.0 / 2.0 )",
        "Answer": 4.5,
    },
]


def test_svamp_from_its_task_config_and_published_file_is_scored(tmp_path):
    from test_runner import protocol

    from minimath.eval.modes import build_task
    from minimath.eval.runner import rescore

    (tmp_path / "test.json").write_text(json.dumps(SVAMP, indent=2))
    (tmp_path / "train.jsonl").write_text(json.dumps(SVAMP[0] | {"Type": "Subtraction"}) + "\n")  # the hub's rows
    task_cfg = OmegaConf.merge(
        OmegaConf.load(CONF_DIR / "task" / "svamp.yaml"),
        {"path": str(tmp_path / "test.json"), "fewshot_path": str(tmp_path / "train.jsonl")},
    )
    task = build_task(task_cfg)
    assert [d.gold for d in task.docs] == ["51", "1", "4.5"] and task.kind == "numeric"
    assert task.docs[0].question == (
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on "
        "each pack. How much do you have to pay to buy each pack?"
    )
    assert ".." not in task.docs[2].question and task.fewshot[0].solution == "( 76.0 - 25.0 ) = 51"
    for p in (protocol(), protocol("report", extraction="last_number")):
        right = [{"doc_id": i, "output": f"The answer is {d.gold}."} for i, d in enumerate(task.docs)]
        assert rescore(task, right, p)[0]["accuracy"] == 1.0
        wrong = [{"doc_id": i, "output": f"The answer is {float(d.gold) + 1}."} for i, d in enumerate(task.docs)]
        assert rescore(task, wrong, p)[0]["accuracy"] == 0.0

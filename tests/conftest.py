"""Shared test helpers: config composition into a temp dir and a tiny model config."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from minimath.config import CONF_DIR
from minimath.model import ModelConfig
from minimath.schema import register_configs

REPO = Path(__file__).resolve().parents[1]

# Per-machine caches (the precision probe's, minimath.hardware) go to a directory of this test session, never the
# user's ~/.cache; subprocesses the tests start inherit it.
os.environ["MINIMATH_CACHE_DIR"] = tempfile.mkdtemp(prefix="minimath-test-cache-")


def embedded_heldout() -> dict:
    """The held-out generators of the embedded data config (what `python train.py` trains on)."""
    from omegaconf import OmegaConf

    from minimath.eval.tasks import heldout_generators

    return heldout_generators(OmegaConf.load(CONF_DIR / "data" / "embedded.yaml"))


def compose_config(
    overrides: list[str], output_dir: Path, config_name: str = "config", return_hydra: bool = False
) -> DictConfig:
    """The config an entry point would see for these command-line overrides, writing under `output_dir`
    (`return_hydra`: with the `hydra:` node, a sweep's settings)."""
    register_configs()  # as the entry points do before composing
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra)
    if config_name != "config":
        return cfg
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


# The embedded dataset with a few hundred documents per source, prepared once per test session.
SMALL_DATA_OVERRIDES = [
    f"data.sources.{name}.documents_count=150"
    for name in ("general_en", "general_zh", "math_text", "word_problems_cot", "basic_math", "equations")
]

# Small enough that a CPU training step takes milliseconds.
TINY_TRAIN_OVERRIDES = [
    "model.n_layer=2",
    "model.n_embd=32",
    "model.n_head=2",
    "model.n_kv_head=2",
    "model.ffn_hidden=64",
    "model.max_seq_len=32",
    "hardware.micro_batch=4",
    "batch=128",
    "train.max_tokens=512",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "stage=1",
    *SMALL_DATA_OVERRIDES,
]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A session-wide prepared-data directory: prepare runs once, later uses find it up to date."""
    return tmp_path_factory.mktemp("prepared")


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return ModelConfig(vocab_size=96, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_hidden=128, max_seq_len=64)


def small_data_config(directory: Path, sources: dict, **extra) -> DictConfig:
    """A data config over `sources` (Qwen ids, one tokenizer process, light cleaning), prepared into `directory`;
    `extra`: more keys (`stages`)."""
    return OmegaConf.create(
        {
            "name": "t",
            "tokenizer": "qwen",
            "dir": str(directory),
            "shard_tokens": 1 << 20,
            "workers": 1,
            "clean": {"min_chars": 5, "max_chars": 10000, "dedup": True, "near_dedup": False, "near_threshold": 0.8},
            "decontaminate": {"n": 8, "eval_sets": []},
            "sources": sources,
            **extra,
        }
    )


def write_pairs(path: Path, n: int, seed: int = 0) -> list[dict]:
    """`n` distinct instruction pairs in JiuZhang3.0's format (`{"input", "output"}`) as jsonl; returns them."""
    import json
    import random

    rng, pairs, seen = random.Random(seed), [], set()
    while len(pairs) < n:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        pairs.append(
            {
                "input": f"## Question\nWhat is {a} plus {b}?\n## Solution\n",
                "output": f"We add the tens and the ones: {a} + {b} = {a + b}.\nThe answer is {a + b}.",
            }
        )
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return pairs


# The synthesis tests' fault-injecting local chat-completions server and fast `openai` teachers on it: retries,
# timeouts and backoff short enough that a test with faults takes a fraction of a second.
FAST_TEACHER = {
    "model": "test-teacher",
    "api_key_env": None,
    "concurrency": 4,
    "max_retries": 3,
    "backoff_base": 0.001,
    "backoff_max": 0.01,
    "timeout": 0.3,
    "failure_budget": 5,
    "seed": 0,
}


@pytest.fixture
def chat_server():
    """A started `ChatServer` (stalls last 2 s, past the fast teachers' 0.3 s timeout)."""
    from minimath.synthesis.testing_server import ChatServer

    with ChatServer(stall_seconds=2.0) as server:
        yield server


@pytest.fixture
def make_teacher():
    """`make_teacher(base_url, **settings)`: an OpenAITeacher with FAST_TEACHER settings, overridden by `settings`."""
    from minimath.synthesis.teachers.openai_teacher import OpenAITeacher

    return lambda base_url, **settings: OpenAITeacher(base_url=base_url, **{**FAST_TEACHER, **settings})


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine its spin-waits cost 100×."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# One item of each benchmark, in its published layout (the file conf/task/<name>.yaml names under paths.eval_root),
# and the text a training document copying it would hold (a multiple-choice copy letters its options "(A) ...";
# TabMWP's copy is its table and question, without JiuZhang3.0's heading).
MATH_PROBLEM = "Let $f(x) = 3x^2 - 5x + 7$. Compute the sum of all real numbers $t$ for which $f(t) = f(2t - 1)$ holds."
BENCHMARK_ITEMS = {
    "math": (
        "MATH/test.jsonl",
        {"problem": MATH_PROBLEM, "solution": "Expanding, $t = 1$ or $t = 2/3$, so $\\boxed{5/3}$.", "type": "Algebra"},
        MATH_PROBLEM,
    ),
    "math500": (
        "math-oai/test.jsonl",
        {
            "problem": MATH_PROBLEM,
            "solution": "So $\\boxed{5/3}$.",
            "answer": "5/3",
            "unique_id": "test/algebra/1.json",
        },
        MATH_PROBLEM,
    ),
    "mmlu": (
        "mmlu/test/abstract_algebra_test.csv",
        ["Find the order of the symmetric group on five letters.", "24", "60", "120", "720", "C"],
        "Find the order of the symmetric group on five letters.\n(A) 24 (B) 60 (C) 120 (D) 720",
    ),
    "ape210k": (
        "ape210k/test.ape.json",
        {
            "id": "1",
            "segmented_text": "",
            "original_text": "一个长方形花坛的长是12米，宽比长少3米，这个花坛的面积是多少平方米？",
            "equation": "x=12*(12-3)",
            "ans": "108",
        },
        "一个长方形花坛的长是12米，宽比长少3米，这个花坛的面积是多少平方米？",
    ),
    "gsm8k": (
        "gsm8k/test.jsonl",
        {
            "question": "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
            "muffins for her friends every day with four. How many eggs does she sell?",
            "answer": "16 - 3 - 4 = 9\n#### 9",
        },
        "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins",
    ),
    "svamp_all": (
        "svamp/test.jsonl",
        {
            "ID": "chal-7",
            "Body": "Paco had 26 salty cookies and 17 sweet cookies. He ate 14 sweet cookies and 9 salty cookies",
            "Question": "How many salty cookies did Paco have left?",
            "Equation": "( 26.0 - 9.0 )",
            "Answer": 17.0,
            "Type": "Subtraction",
        },
        "Paco had 26 salty cookies and 17 sweet cookies. He ate 14 sweet cookies and 9 salty cookies.",
    ),
    "tabmwp": (
        "tabmwp/test.jsonl",
        {
            "question": "A bakery counted the broken cookies in each pack. How many packs had at least 15 broken "
            "cookies?",
            "choices": None,
            "answer": "4",
            "unit": "packs",
            "table_title": "Broken cookies per pack",
            "table": "Stem | Leaf \n1 | 2 4 7\n2 | 0 3 3\n3 | 1",
            "solution": "Count the leaves of stems 1 (from 5 on), 2 and 3.",
            "ques_type": "free_text",
            "ans_type": "integer_number",
        },
        "Stem | Leaf \n1 | 2 4 7\n2 | 0 3 3\n3 | 1\nA bakery counted the broken cookies in each pack.",
    ),
    "asdiv": (
        "asdiv/test.jsonl",
        {
            "body": "A farmer planted 45 rows of corn along the river bank with 18 plants in each row.",
            "question": "How many corn plants did the farmer plant?",
            "solution_type": "Multiplication",
            "answer": "810 (plants)",
            "formula": "45*18=810",
        },
        "A farmer planted 45 rows of corn along the river bank with 18 plants in each row.",
    ),
}


def write_benchmark_files(root: Path, tasks: list[str]) -> None:
    """The files of `tasks` (keys of BENCHMARK_ITEMS) under `root` (a paths.eval_root), one item each."""
    import csv
    import json

    for name in tasks:
        relative, record, _ = BENCHMARK_ITEMS[name]
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(record)
        else:
            path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")


def copy_of(name: str) -> str:
    """A training document that copies the item of benchmark `name`."""
    return f"Practice problem from a forum post. {BENCHMARK_ITEMS[name][2]} Solve it and explain every step."


def train_cli(run_dir, data_root, *extra, env=None, new_session=False) -> subprocess.Popen:
    """`python train.py` on the tiny config in its own process (`new_session`: in its own process group, so a test
    can kill every rank at once, as a scheduler does)."""
    args = [
        sys.executable,
        "train.py",
        *TINY_TRAIN_OVERRIDES,
        f"paths.data_root={data_root}",
        "trainer.deterministic=true",
        "callbacks.heldout_eval.every_n_steps=1000",
        "callbacks.heldout_eval.n=1",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    return subprocess.Popen(
        args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )

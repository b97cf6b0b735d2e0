"""The training config's schema: the types (and, for `resume`, the values) of its top-level keys and of the `train`,
`optim`, `checkpoint`, `hardware` and `paths` sections, as Hydra structured configs. `conf/config.yaml` names it
first in its defaults list, so the YAML and the command line merge onto it and a wrong type fails at composition
in one line (`python train.py train.max_tokens=abc` -> `error: train.max_tokens: Value 'abc' ... is incompatible
with type hint ...`), before any module is imported. The groups whose options are free-form objects (`model`,
`data`, `scheduler`, `logger`, `callbacks`, `trainer`) are typed `Any` here: the classes they build check them.

`register_configs()` stores it in Hydra's ConfigStore; the entry points (and tests composing the config) call it
before composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Union

SCHEMA = "schema"  # the name conf/config.yaml's defaults list uses


class Resume(str, Enum):
    auto = "auto"  # rerunning a command continues the stage from its last.ckpt
    never = "never"  # refuse to run over an unfinished stage

    __str__ = str.__str__  # `auto`, as the YAML spells it (also in logged hyper-parameters)


@dataclass
class Train:
    max_tokens: Optional[Union[int, float]] = None  # 20480, 2e4 or 100_000; null: the data config's budget
    max_nonfinite_steps: int = 5
    loss_chunk_bytes: Optional[int] = 134217728
    z_loss: float = 0.0
    compile: bool = False
    loss_guard: Any = None  # the module-owned loss-spike guard (minimath.guards), built from its config; null: off


@dataclass
class Optim:
    lr: float = 3e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1
    fused: Any = "auto"  # auto (on GPU), true or false


@dataclass
class Checkpoint:
    every_n_train_steps: Optional[int] = 100
    every_minutes: Optional[float] = 30.0
    keep_last: Optional[int] = 3


@dataclass
class Hardware:
    accelerator: str = "cpu"
    devices: Any = 1  # a count, or Lightning's "auto"
    num_nodes: int = 1
    strategy: Any = "auto"  # a Lightning strategy name or object config
    precision: str = "auto"  # auto, 32-true, bf16-mixed, 16-mixed, ... (checked by minimath.hardware)
    micro_batch: Any = "auto"  # sequences per forward/backward, or auto
    max_micro_batch: Optional[int] = None
    num_workers: int = 0
    peak_tflops: Any = None  # TFLOP/s, measure, or null
    threads: Optional[int] = None  # torch's intra-op threads; null: torch's default (every core)
    activation_checkpointing: bool = (
        False  # recompute each block's activations in backward (less memory, ~1/3 more compute)
    )
    gpu_memory_gib: Optional[float] = (
        None  # memory per GPU the dry run's planner fits the micro-batch to (null: not planned)
    )
    planned_mfu: float = 0.4  # the MFU (all FLOPs, of peak_tflops) the dry run's time per stage assumes


@dataclass
class Paths:
    runs: str = "outputs"
    output_dir: str = "outputs"
    data_root: str = "data/prepared"
    raw_root: str = "data/raw"
    eval_root: str = "data/eval"


@dataclass
class Objective:
    tag: str = "train/loss"  # a TensorBoard scalar the stage logs
    tail: int = 10  # the mean of its last `tail` logged values


@dataclass
class TrainingConfig:
    stage: str = "all"  # all, or a stage of the data config (checked against it: minimath.config)
    batch: str = "stage"  # stage, a name of batch_sizes, or a number of tokens per step
    batch_sizes: Dict[str, int] = field(default_factory=dict)
    seed: int = 1234
    run_name: str = "run"
    dry_run: bool = False
    init_from: Optional[str] = "auto"
    init_optimizer: bool = False
    init_vocab: Optional[str] = None  # null | extend (minimath.training.start_tokenizer)
    branch_from: Optional[str] = None
    resume: Resume = Resume.auto
    curriculum_eval_items: int = 200
    final_heldout: bool = False
    final_merges: Any = None  # {name: {last: K, ema: null or a decay}}: checked by minimath.training.merge_specs
    final_stream_loss: Any = None  # {first: N, count: M}: checked by minimath.eval.stream.stream_windows
    objective: Optional[Objective] = None
    train: Train = field(default_factory=Train)
    optim: Optim = field(default_factory=Optim)
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    hardware: Hardware = field(default_factory=Hardware)
    paths: Paths = field(default_factory=Paths)
    model: Any = None
    data: Any = None
    scheduler: Any = None
    logger: Any = None
    callbacks: Any = None
    trainer: Any = None


def register_configs() -> None:
    """Store the schema in Hydra's ConfigStore (and register the config's resolvers); idempotent."""
    from hydra.core.config_store import ConfigStore

    from minimath.config import register_resolvers

    register_resolvers()
    ConfigStore.instance().store(name=SCHEMA, node=TrainingConfig)

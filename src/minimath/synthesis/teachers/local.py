"""Teachers that run a model in this process: the project's own checkpoint through its KV-cache generation
(`checkpoint`: how the small synthesis model writes on a CPU), a local transformers directory (`hf`), and vLLM's
offline engine (`vllm`: batches on a GPU, when vLLM and a GPU are present).

A local teacher answers a batch at a time. Which requests share a batch changes what a batched forward pass
computes in its last bits, so the pipeline hands over fixed units (`minimath.synthesis.pipeline`) and a resumed
run sends the same units again: the same batch, the same seed, the same answers. Sampling is seeded per batch by
the first request's cache key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from minimath.errors import UserError
from minimath.synthesis.records import Completion, Request


def batch_seed(requests: list[Request], backend: str, model: str) -> int:
    return int(hashlib.sha256(requests[0].cache_key(backend, model).encode()).hexdigest()[:8], 16)


def _batched(requests: Iterable[Request], size: int) -> Iterator[list[Request]]:
    batch: list[Request] = []
    for request in requests:
        batch.append(request)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class CheckpointTeacher:
    """A project model generating with its KV cache, `batch_size` requests at a time (`checkpoint_teacher` loads a
    `train.py` checkpoint, e.g. the synthesis model trained on `data=jiuzhang_kd`). Its prompt is
    `Request.prompt_text()`; a prompt longer than the model's context minus `max_tokens` is a counted failure
    (`context length`), never silently cut."""

    backend = "checkpoint"

    def __init__(self, model, tokenizer, name: str, batch_size: int = 16, stop: tuple[str, ...] = ()):
        self.model_obj, self.tokenizer, self.model = model, tokenizer, name
        self.batch_size = int(batch_size)
        self.stop = tuple(stop)

    def _encode(self, request: Request) -> list[int] | None:
        ids = self.tokenizer.encode(request.prompt_text())
        room = self.model_obj.config.max_seq_len - request.sampling.max_tokens
        return ids if 0 < len(ids) <= room else None

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]:
        from minimath.eval.generation import GenerationConfig, generate_counted

        for batch in _batched(requests, self.batch_size):
            encoded = [(r, self._encode(r)) for r in batch]
            for r, ids in encoded:
                if ids is None:
                    yield Completion(r, failure="context length")
            fitting = [(r, ids) for r, ids in encoded if ids is not None]
            if not fitting:
                continue
            sampling = fitting[0][0].sampling
            cfg = GenerationConfig(
                max_new_tokens=sampling.max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                stop=self.stop,
                seed=batch_seed([r for r, _ in fitting], self.backend, self.model),
            )
            start = time.perf_counter()
            texts = generate_counted(self.model_obj, self.tokenizer, [ids for _, ids in fitting], cfg)
            seconds = (time.perf_counter() - start) / len(fitting)
            for (r, ids), (text, n_new) in zip(fitting, texts):
                yield Completion(
                    r,
                    text=text,
                    tokens_in=len(ids),
                    tokens_out=n_new,
                    seconds=seconds,
                    finish_reason="length" if n_new >= sampling.max_tokens else "stop",
                )


def checkpoint_teacher(ckpt: str | None, batch_size: int = 16, stop: tuple[str, ...] = ()) -> CheckpointTeacher:
    """`teacher=checkpoint ckpt=PATH`: the model and tokenizer a `train.py` checkpoint was trained with."""
    from minimath.eval.generation import load_for_inference

    if not ckpt:
        raise UserError(
            "teacher=checkpoint needs ckpt=PATH (a synthesis model's checkpoints/final.ckpt; train one "
            "with python train.py data=jiuzhang_kd)"
        )
    path = Path(str(ckpt))
    if path.is_dir():
        raise UserError(f"ckpt={path} is a directory: pass {path}/checkpoints/final.ckpt")
    if not path.is_file():
        raise UserError(f"ckpt={path} does not exist: train a synthesis model first (python train.py data=jiuzhang_kd)")
    model, tokenizer = load_for_inference(path)
    return CheckpointTeacher(model, tokenizer, str(path), batch_size, tuple(stop))


class HFTeacher:
    """A transformers causal LM directory, batched greedy or sampled generation with left padding; the model's chat
    template when it has one (`chat_template: auto`), else the plain prompt text."""

    backend = "hf"

    def __init__(self, path: str, batch_size: int = 8, chat_template: str = "auto", dtype: str = "auto"):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:  # pragma: no cover - transformers is pinned in requirements.txt
            raise UserError(f"teacher=hf needs transformers ({err})") from None
        directory = Path(str(path))
        if not (directory / "config.json").is_file():
            raise UserError(f"teacher.path={directory} is not a transformers model directory (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp32": torch.float32}[str(dtype)]
        self.model_obj = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype).eval()
        self.use_chat = chat_template == "always" or (chat_template == "auto" and self.tokenizer.chat_template)
        self.model = str(directory)
        self.batch_size = int(batch_size)

    def _prompt(self, request: Request) -> str:
        if self.use_chat:
            return self.tokenizer.apply_chat_template(request.chat(), tokenize=False, add_generation_prompt=True)
        return request.prompt_text()

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]:
        import torch

        for batch in _batched(requests, self.batch_size):
            sampling = batch[0].sampling
            enc = self.tokenizer([self._prompt(r) for r in batch], return_tensors="pt", padding=True)
            torch.manual_seed(batch_seed(batch, self.backend, self.model))
            start = time.perf_counter()
            with torch.no_grad():
                out = self.model_obj.generate(
                    **enc,
                    max_new_tokens=sampling.max_tokens,
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else None,
                    top_p=sampling.top_p if sampling.temperature > 0 else None,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            seconds = (time.perf_counter() - start) / len(batch)
            width = enc["input_ids"].shape[1]
            for i, r in enumerate(batch):
                new = out[i, width:]
                new = new[new != self.tokenizer.pad_token_id]
                yield Completion(
                    r,
                    text=self.tokenizer.decode(new, skip_special_tokens=True),
                    tokens_in=int(enc["attention_mask"][i].sum()),
                    tokens_out=int(new.numel()),
                    seconds=seconds,
                    finish_reason="length" if new.numel() >= sampling.max_tokens else "stop",
                )


class VLLMTeacher:
    """vLLM's offline engine (`vllm.LLM`) in this process: one call per unit, vLLM batches inside. Needs vLLM and a
    GPU; without them it stops in one line (a multi-machine run points `teacher=openai` at vLLM servers)."""

    backend = "vllm"

    def __init__(self, path: str, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9):
        try:
            import torch
            import vllm
        except ImportError:
            raise UserError(
                "teacher=vllm needs the vllm package and a GPU: pip install vllm on a GPU machine, or "
                "serve the model with vLLM and use teacher=openai teacher.base_url=..."
            ) from None
        if not torch.cuda.is_available():
            raise UserError(
                "teacher=vllm needs a CUDA GPU, and torch sees none on this machine: use "
                "teacher=checkpoint or teacher=hf on CPU"
            )
        self.engine = vllm.LLM(
            model=str(path),
            tensor_parallel_size=int(tensor_parallel_size),
            gpu_memory_utilization=float(gpu_memory_utilization),
        )
        self.params = vllm.SamplingParams
        self.model = str(path)

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]:
        batch = list(requests)
        if not batch:
            return
        s = batch[0].sampling
        params = self.params(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=batch_seed(batch, self.backend, self.model),
        )
        start = time.perf_counter()
        outputs = self.engine.chat([r.chat() for r in batch], params, use_tqdm=False)
        seconds = (time.perf_counter() - start) / len(batch)
        for r, out in zip(batch, outputs):
            o = out.outputs[0]
            yield Completion(
                r,
                text=o.text,
                tokens_in=len(out.prompt_token_ids),
                tokens_out=len(o.token_ids),
                seconds=seconds,
                finish_reason=str(o.finish_reason),
            )

"""protocol=tool: generation stops at a closed program, the program runs in the sandbox, its output (or its error's
last line) goes back as an ```output block, generation resumes, and the transcript is scored; escapes a program
tries are contained, counted, and the evaluation goes on."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from minimath.eval import runner
from minimath.eval.documents import Doc, Task
from minimath.eval.generation import GenerationConfig, generate
from minimath.eval.modes import build_protocol
from minimath.eval.runner import Protocol, run_task
from minimath.eval.tool import FENCE, ToolSettings, closed_program, solve_with_tool
from minimath.model import ModelConfig, Transformer
from minimath.sandbox import SandboxLimits
from minimath.tokenizer import CompactTokenizer, get_tokenizer

from conftest import compose_config

FAST = SandboxLimits(wall_seconds=2.0, cpu_seconds=1, memory_bytes=512 << 20)


def program(code: str) -> str:
    return f"We compute it.\n```python\n{code}\n```\n"


def chars(text: str) -> list[int]:
    return [ord(c) for c in text]


def scripted(turns_by_question: dict[str, list[str]], seen: list[str] | None = None):
    """A generation function whose continuations are scripted: an item's turn is the number of ```output blocks in
    its context; the ids are characters (`chars`). `seen` collects every context it was given."""

    def generate_fn(prompts, cfg):
        outputs = []
        for ids in prompts:
            text = "".join(map(chr, ids))
            seen is not None and seen.append(text)
            question = next(q for q in turns_by_question if q in text)
            turns = turns_by_question[question]
            outputs.append(turns[min(text.count("```output"), len(turns) - 1)])
        assert FENCE in cfg.stop_kept
        return outputs

    return generate_fn


def test_closed_program_is_the_block_a_segment_ends_with():
    assert closed_program("Let us compute.\n```python\nx = 6 * 7\nprint(x)\n```\n") == "x = 6 * 7\nprint(x)"
    assert closed_program("```python\nprint(1)\n```") == "print(1)"  # the model ended right after the fence
    assert closed_program("```python\nprint(1)\n") is None  # not closed: the token budget ran out
    assert closed_program("```output\n1\n```\n") is None
    assert closed_program("The answer is 4.") is None


def test_output_goes_back_and_generation_resumes():
    seen = []
    generate_fn = scripted(
        {
            "Q1": [program("print(6 * 7)"), "So the product is 42.\nThe answer is 42."],
            "Q2": [program("print(1 / 0)"), "Division failed; by hand it is 5.\nThe answer is 5."],
        },
        seen,
    )
    prompts = [chars("## Question\nQ1\n## Solution\n"), chars("## Question\nQ2\n## Solution\n")]
    first, second = solve_with_tool(generate_fn, prompts, chars, GenerationConfig(), ToolSettings(limits=FAST), 10**6)
    assert first.text == (
        "We compute it.\n```python\nprint(6 * 7)\n```\n```output\n42\n```\nSo the product is 42.\nThe answer is 42."
    )
    assert "```output\nZeroDivisionError: division by zero\n```\nDivision failed" in second.text
    assert (first.counts.programs, first.counts.failed, second.counts.failed) == (1, 0, 1)
    # the second round started from the question, the program and its output
    assert any(s.endswith("```output\n42\n```\n") and "Q1" in s for s in seen)


def test_rounds_limit_the_programs_run():
    generate_fn = scripted({"Q": [program("print(1)")]})  # writes a program every turn
    (transcript,) = solve_with_tool(
        generate_fn, [chars("Q")], chars, GenerationConfig(), ToolSettings(rounds=2, limits=FAST), 10**6
    )
    assert transcript.counts.programs == 2 and transcript.text.count("```python") == 3


def test_a_transcript_that_fills_the_context_stops():
    generate_fn = scripted({"Q": [program("print('x' * 500)")]})
    (transcript,) = solve_with_tool(
        generate_fn, [chars("Q")], chars, GenerationConfig(), ToolSettings(limits=FAST), 300
    )
    assert transcript.counts.programs == 1 and transcript.counts.context_full


# What a model-written program may try; each is contained, counted, and the evaluation goes on.
ESCAPES = {
    "read /etc/passwd": "print(open('/etc/passwd').read())",
    "read beside its directory": "print(open('../secret.txt').read())",
    "open a socket": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "allocate 8 GiB": "x = bytearray(8 * 2**30)",
    "infinite loop": "while True:\n    pass",
    "write outside its directory": "open('/tmp/minimath-escaped.txt', 'w').write('x')",
    "poke memory with ctypes": "import ctypes\nctypes.memmove(id(1), id(2), 8)",
}


@pytest.fixture
def tool_protocol():
    return Protocol(
        name="tool",
        shots={},
        extraction="auto",
        subset=None,
        seed=0,
        generation=GenerationConfig(max_new_tokens=64),
        batch_size=4,
        tool=ToolSettings(rounds=2, workers=2, limits=FAST),
    )


def test_escapes_are_contained_counted_and_the_evaluation_goes_on(monkeypatch, tool_protocol):
    docs = [Doc("What is 6 times 7?", "42")] + [Doc(f"Escape: {name}?", "3") for name in ESCAPES]
    turns = {docs[0].question: [program("print(6 * 7)"), "The answer is 42."]}
    turns |= {f"Escape: {name}?": [program(code), "The answer is 3."] for name, code in ESCAPES.items()}
    text = scripted(turns)
    tok = get_tokenizer("qwen")
    monkeypatch.setattr(runner, "generate", lambda model, tokenizer, prompts, cfg: text(prompts, cfg))
    monkeypatch.setattr(tok, "encode", chars)
    model = Transformer(
        ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=2, n_embd=16, ffn_hidden=32, max_seq_len=4096)
    )
    summary, records = run_task(model, tok, Task("escapes", "numeric", docs), tool_protocol)
    by_name = dict(zip(["normal", *ESCAPES], records))
    assert by_name["normal"]["output"].count("```output\n42\n```") == 1
    assert by_name["normal"]["tool"] == {"programs": 1, "failed": 0, "refused": 0, "timed_out": 0, "context_full": 0}
    for name in ESCAPES:
        tool = by_name[name]["tool"]
        assert tool["programs"] == 1 and tool["failed"] + tool["timed_out"] == 1, name
        assert by_name[name]["correct"], name  # the model went on writing and its answer was scored
    assert by_name["infinite loop"]["tool"]["timed_out"] == 1
    assert "```output\nMemoryError\n```" in by_name["allocate 8 GiB"]["output"]
    assert "root:" not in json.dumps(records) and not Path("/tmp/minimath-escaped.txt").exists()
    refused = ("read /etc/passwd", "read beside its directory", "open a socket", "fork bomb", "poke memory with ctypes")
    assert all(by_name[name]["tool"]["refused"] == 1 for name in refused)
    assert summary["accuracy"] == 1.0 and summary["tool"]["programs"] == len(ESCAPES) + 1
    assert summary["tool"]["timed_out"] == 1 and summary["tool"]["failed"] == len(ESCAPES) - 1
    assert summary["tool"]["refused"] >= len(refused) and "audit_hook" in summary["tool"]["sandbox_layers"]
    assert summary["protocol"]["tool"]["rounds"] == 2


def memorized_model(text: str, tok: CompactTokenizer, steps: int = 300) -> Transformer:
    """A tiny transformer trained until greedy decoding writes `text` back from its first line."""
    torch.manual_seed(0)
    model = Transformer(
        ModelConfig(
            vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_kv_head=4, n_embd=64, ffn_hidden=128, max_seq_len=128
        )
    )
    ids = torch.tensor([tok.encode(text)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = F.cross_entropy(model(ids[:, :-1])[0], ids[0, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_a_real_tiny_transformer_writes_a_program_and_reads_its_output(one_torch_thread):
    # trained on a transcript whose output block says 41: what follows the program in the result is the sandbox's 42
    question = "## Question\nWhat is 6 times 7?\n## Solution\n"
    solution = "```python\nprint(6 * 7)\n```\n```output\n41\n```\nThe answer is 42."
    tok = CompactTokenizer.from_corpus(get_tokenizer("qwen"), [question + solution])
    model = memorized_model(question + solution + "<|endoftext|>", tok)
    cfg = GenerationConfig(max_new_tokens=40)
    assert generate(model, tok, [tok.encode(question)], cfg)[0].startswith(
        "```python\nprint(6 * 7)\n```\n```output\n41"
    )
    (transcript,) = solve_with_tool(
        lambda prompts, c: generate(model, tok, prompts, c), [tok.encode(question)], tok.encode, cfg,
        ToolSettings(limits=FAST), 64,
    )  # fmt: skip
    assert transcript.text.startswith("```python\nprint(6 * 7)\n```\n```output\n42\n```\n")
    assert transcript.counts.programs == 1 and len(transcript.text) > len(
        "```python\nprint(6 * 7)\n```\n```output\n42\n```\n"
    )


def test_protocol_tool_composes(tmp_path):
    protocol = build_protocol(compose_config(["protocol=tool"], tmp_path, config_name="eval"))
    assert protocol.name == "tool" and protocol.tool.rounds == 4 and protocol.tool.limits.memory_bytes == 1 << 30
    assert protocol.shots_for("gsm8k") == 0

"""`eval.py ckpt=hf:DIR`: tiny random transformers models written here (Llama untied, Qwen2 with attention biases,
GPT-2 with learned positions), each saved with its own tokenizer, evaluated on a tiny task file through the same
prompts, protocols and scorer as our checkpoints, with rows labelled by the model's directory name."""

import json

import pytest
import torch
import torch.nn.functional as F
from test_jiuzhang import TABMWP

from minimath.errors import UserError
from minimath.eval.documents import Doc, Task
from minimath.eval.generation import GenerationConfig
from minimath.eval.hf_model import load_hf
from minimath.eval.modes import build_protocol, evaluate, try_prompt
from minimath.eval.prompts import build_prompt
from minimath.eval.runner import score_output
from minimath.tokenizer import CompactTokenizer, get_tokenizer

from conftest import compose_config

transformers = pytest.importorskip("transformers")

QUESTIONS = [("Tom has 40 apples and buys 2 more. How many apples does he have?", 42), ("What is 3 plus 4?", 7)]
GSM8K = "".join(json.dumps({"question": q, "answer": f"We add.\n#### {a}"}) + "\n" for q, a in QUESTIONS)
SOLUTION = " We add them. The answer is 42.\n\n"


def architectures(vocab: int, eos: int) -> dict:
    small = dict(vocab_size=vocab, num_hidden_layers=2, num_attention_heads=4, hidden_size=32, eos_token_id=eos)
    return {
        "llama-untied": transformers.LlamaConfig(
            **small, intermediate_size=64, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False
        ),
        "qwen2-biases": transformers.Qwen2Config(
            **small, intermediate_size=64, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True
        ),
        "gpt2": transformers.GPT2Config(
            vocab_size=vocab, n_layer=2, n_head=4, n_embd=32, n_positions=256, bos_token_id=eos, eos_token_id=eos
        ),
    }


def save_tokenizer(directory, corpus: list[str]) -> tuple[int, int]:
    """A fast tokenizer of the project's export (`hf.save_hf_tokenizer`: ChatML template, EOT as eos) over a compact
    vocabulary of `corpus`; returns the vocabulary size a model needs and the eos id."""
    from minimath.hf import save_hf_tokenizer

    tok = CompactTokenizer.from_corpus(get_tokenizer("qwen"), corpus)
    return tok.vocab_size + save_hf_tokenizer(tok, tok.vocab_size, directory, max_len=256), tok.eot_id


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{architecture: directory} of three random tiny models, each with its tokenizer."""
    root = tmp_path_factory.mktemp("hf_models")
    corpus = [q for q, _ in QUESTIONS] + ["Question: Answer:" + SOLUTION, "<|im_start|>user\n<|im_end|>\n"]
    dirs = {}
    for name, config in architectures(*save_tokenizer(root / "tok", corpus)).items():
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config)
        model.save_pretrained(root / name)
        save_tokenizer(root / name, corpus)
        dirs[name] = root / name
    return dirs


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gsm8k") / "test.jsonl"
    path.write_text(GSM8K)
    return path


def eval_config(tmp_path, directory, task_file, *overrides):
    return compose_config(
        [
            f"ckpt=hf:{directory}",
            "tasks=[gsm8k]",
            f"task.path={task_file}",
            "protocol.shots.gsm8k=0",
            "protocol.generation.max_new_tokens=12",
            f"paths.output_dir={tmp_path / 'out'}",
            *overrides,
        ],
        tmp_path,
        config_name="eval",
    )


@pytest.mark.parametrize("arch", ["llama-untied", "qwen2-biases", "gpt2"])
def test_rows_are_labelled_and_scored_by_the_same_scorer(tmp_path, models, task_file, arch, one_torch_thread):
    cfg = eval_config(tmp_path, models[arch], task_file)
    summary = evaluate(cfg)["gsm8k"]
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["model"] == arch
    assert (out / "results.md").read_text().splitlines()[2].startswith(f"|{arch}|")
    records = [json.loads(line) for line in (out / "gsm8k.jsonl").read_text().splitlines()]
    task = Task("gsm8k", "numeric", [Doc(q, str(a)) for q, a in QUESTIONS], prompt_style="gsm8k")
    protocol = build_protocol(cfg)
    for record, doc in zip(records, task.docs):
        assert record["prompt"] == build_prompt(task, doc, [], "standard", load_hf(models[arch]).frame()).text
        assert {k: record[k] for k in ("extracted", "correct", "reason")} == {
            k: v for k, v in score_output(task, doc, record["output"], protocol).items() if k != "form_ok"
        }
    assert summary["n"] == 2


@pytest.mark.parametrize("arch", ["llama-untied", "qwen2-biases", "gpt2"])
def test_batched_generation_equals_one_prompt_at_a_time(models, arch, one_torch_thread):
    lm = load_hf(models[arch])
    prompts = [lm.tokenizer.encode(q) for q, _ in QUESTIONS] + [lm.tokenizer.encode("What is")]
    cfg = GenerationConfig(max_new_tokens=10, stop_at_eot=False)
    batched = lm.generate(prompts, cfg)
    assert batched == [lm.generate([p], cfg)[0] for p in prompts]
    reference = lm.model.generate(torch.tensor([prompts[0]]), max_new_tokens=10, do_sample=False, eos_token_id=None)
    assert batched[0] == lm.tokenizer.decode(reference[0, len(prompts[0]) :].tolist())


def test_loglikelihoods_are_the_models_log_probabilities(models):
    lm = load_hf(models["llama-untied"])
    context, continuation = lm.tokenizer.encode("What is 3 plus"), lm.tokenizer.encode(" 4?")
    with torch.no_grad():
        logp = F.log_softmax(lm.model(torch.tensor([context + continuation])).logits[0].float(), -1)
    hand = sum(float(logp[len(context) - 1 + i, t]) for i, t in enumerate(continuation))
    assert lm.loglikelihoods([context], [continuation]) == [pytest.approx(hand, abs=1e-4)]


def test_report_protocol_uses_the_models_chat_template(models):
    lm = load_hf(models["gpt2"])
    lm.tokenizer.hf.chat_template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    task = Task("gsm8k", "numeric", [Doc("What is 3 plus 4?", "7")])
    assert build_prompt(task, task.docs[0], [], "report", lm.frame()).text == "[INST] What is 3 plus 4? [/INST]"
    lm.tokenizer.hf.chat_template = None  # no template: MiniMATH's ChatML turn
    assert build_prompt(task, task.docs[0], [], "report", lm.frame()).text.startswith("<|im_start|>user\n")


def test_a_model_that_writes_the_answer_is_scored_right(tmp_path, models, task_file, one_torch_thread):
    # the untied Llama trained until it writes the first item's solution after its prompt
    lm = load_hf(models["llama-untied"])
    task = Task("gsm8k", "numeric", [Doc(q, str(a)) for q, a in QUESTIONS], prompt_style="gsm8k")
    prompt = build_prompt(task, task.docs[0], [], "standard", lm.frame()).text
    ids = torch.tensor([lm.tokenizer.encode(prompt + SOLUTION)])
    optimizer = torch.optim.AdamW(lm.model.parameters(), lr=1e-2)
    lm.model.train()
    for _ in range(150):
        loss = lm.model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = tmp_path / "memorized"
    lm.model.eval().save_pretrained(trained)
    lm.tokenizer.hf.save_pretrained(trained)
    evaluate(eval_config(tmp_path, trained, task_file, "model_name=memorized-llama"))
    first = json.loads((tmp_path / "out" / "gsm8k.jsonl").read_text().splitlines()[0])
    assert first["output"].startswith(" We add them. The answer is 42.") and first["correct"]
    assert "|memorized-llama|50.00%|" in (tmp_path / "out" / "results.md").read_text()


def test_generate_mode_and_a_missing_directory(tmp_path, models, task_file):
    cfg = eval_config(
        tmp_path, models["gpt2"], task_file, "mode=generate", "prompt='What is 3 plus'", "generate.max_new_tokens=8"
    )
    assert try_prompt(cfg).startswith("What is 3 plus")
    with pytest.raises(UserError, match="no config.json"):
        load_hf(tmp_path / "nowhere")


# One item of each JiuZhang3.0 benchmark in its public layout (`eval/data/<dir>/test.jsonl`; tests/eval/test_jiuzhang.py
# checks each layout in full).
JIUZHANG = {
    "gsm8k": {"question": "What is 3 plus 4?", "answer": "3 + 4 = 7\n#### 7"},
    "math-oai": {"problem": "What is $3+4$?", "solution": "$\\boxed{7}$", "answer": "7", "subject": "Algebra"},
    "gsm-hard": {"input": "What is 3 plus 4?", "code": "def solution():\n    return 7", "target": 7.0},
    "svamp": {"ID": "c-1", "Body": "Jo has 3 pens", "Question": "and buys 4. How many?", "Answer": 7.0},
    "tabmwp": TABMWP[0],
    "asdiv": {"body": "Jo has 3 pens and buys 4.", "question": "How many?", "answer": "7 (pens)", "formula": "3+4"},
    "mawps": {"idx": 0, "input": "Jo has 3 pens and buys 4. How many?", "target": 7.0, "type": "addsub"},
    "carp_en": {"content": "What is $3 + 4$?", "answer": "7", "steps": "", "expr_cands": [], "exprs": [], "edges": {}},
}


def test_jiuzhang_suite_under_the_tool_protocol(tmp_path, models, one_torch_thread):
    # the acceptance command: python eval.py ckpt=hf:DIR tasks=jiuzhang protocol=tool
    for directory, record in JIUZHANG.items():
        (tmp_path / "data" / directory).mkdir(parents=True)
        (tmp_path / "data" / directory / "test.jsonl").write_text(json.dumps(record) + "\n")
    cfg = compose_config(
        [
            f"ckpt=hf:{models['qwen2-biases']}",
            "tasks=jiuzhang",
            "protocol=tool",
            f"paths.eval_root={tmp_path / 'data'}",
            "protocol.generation.max_new_tokens=8",
            f"paths.output_dir={tmp_path / 'out'}",
        ],
        tmp_path,
        config_name="eval",
    )
    summaries = evaluate(cfg)
    assert len(summaries) == 8 and all(s["n"] == 1 and "programs" in s["tool"] for s in summaries.values())
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert table[0] == "|model|GSM8k|MATH|GSM-H|SVAMP|TabMWP|ASDiv|MAWPS|CARP|Avg.|"
    assert table[2].startswith("|qwen2-biases|")
    record = json.loads((tmp_path / "out" / "gsm8k.jsonl").read_text())
    assert record["prompt"] == "## Question\nWhat is 3 plus 4?\n## Solution\n" and "tool" in record

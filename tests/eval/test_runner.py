import pytest
import torch
import torch.nn.functional as F

from minimath.eval.generation import GenerationConfig
from minimath.eval.prompts import build_prompt
from minimath.eval.runner import Protocol, markdown_table, rescore, run_task, select
from minimath.eval.tasks import Doc, Task
from minimath.tokenizer import CompactTokenizer, get_tokenizer
from test_generation import lively_model


def protocol(name="standard", **kw):
    return Protocol(name=name, shots=kw.pop("shots", {"toy": 2}), extraction=kw.pop("extraction", "auto"),
                    subset=kw.pop("subset", None), seed=0, generation=GenerationConfig(max_new_tokens=8), **kw)


CHOICE_DOCS = [Doc("1+1?", "B", choices=["1", "2", "3", "4"], subject="math"),
               Doc("2+2?", "D", choices=["1", "2", "3", "4"], subject="math")]


def test_multiple_choice_scoring_equals_hand_computed_log_probabilities():
    tok = CompactTokenizer.from_corpus(get_tokenizer("qwen"), ["The following are multiple choice questions "
                                                               "(with answers) about math. 1+1? 2+2? A. 1 B. 2 C. 3 "
                                                               "D. 4 Answer:\n"])
    model = lively_model(max_seq_len=128)
    model.tok_embeddings = torch.nn.Embedding(tok.vocab_size, 32)
    torch.nn.init.normal_(model.tok_embeddings.weight, 0, 0.3)
    task = Task("toy", "choice", CHOICE_DOCS[:1], fewshot=CHOICE_DOCS[1:], prompt_style="mmlu")
    summary, records = run_task(model, tok, task, protocol(shots={"toy": 1}))
    prompt = build_prompt(task, CHOICE_DOCS[0], [CHOICE_DOCS[1]], "standard").text
    assert prompt.count("Answer:") == 2 and " D\n\n" in prompt
    ids = tok.encode(prompt)
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ids]))[0, -1], -1)
    hand = [float(logp[tok.encode(f" {letter}")[0]]) for letter in "ABCD"]
    assert len(tok.encode(" A")) == 1
    assert records[0]["loglikelihoods"] == pytest.approx(hand, abs=1e-5)
    assert records[0]["output"] == "ABCD"[max(range(4), key=hand.__getitem__)]
    assert summary["accuracy"] == float(records[0]["correct"])


def test_standard_and_report_prompts():
    task = Task("gsm8k", "numeric", [Doc("How many?", "3")], fewshot=[Doc("Q1?", "1", solution="It is 1.")],
                prompt_style="gsm8k")
    p = build_prompt(task, task.docs[0], task.fewshot, "standard")
    assert p.text == "Question: Q1?\nAnswer: It is 1.\nThe answer is 1.\n\nQuestion: How many?\nAnswer:"
    assert "\n\nQuestion:" in p.stop
    r = build_prompt(task, task.docs[0], task.fewshot, "report")
    assert r.text == "<|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n"
    mc = build_prompt(Task("ceval", "choice", CHOICE_DOCS, prompt_style="ceval"), CHOICE_DOCS[0], [], "standard")
    assert mc.text.startswith("以下是中国关于math考试的单项选择题") and mc.text.endswith("D. 4\n答案：")


def test_seeded_subset():
    docs = [Doc(str(i), str(i)) for i in range(3000)]
    a, b = select(docs, 1000, seed=5), select(docs, 1000, seed=5)
    assert a == b and len(a) == 1000 and select(docs, 1000, seed=6) != a
    assert select(docs, None, 0) == list(enumerate(docs))


def test_rescore_records_reasons_and_missing_predictions():
    task = Task("t", "numeric", [Doc("a", "5"), Doc("b", "7"), Doc("c", "9"), Doc("d", "1")])
    summary, records = rescore(task, [{"doc_id": 0, "output": "The answer is 5."}, {"doc_id": 1, "output": ""},
                                      {"doc_id": 2, "output": "It is 8."}])
    assert summary == {"task": "t", "n": 4, "accuracy": 0.25}
    assert [r["reason"] for r in records] == ["", "empty output", "wrong answer", "missing prediction"]


def test_markdown_table_uses_the_report_columns():
    table = markdown_table({"gsm8k": {"accuracy": 0.4334}, "math23k": {"accuracy": 0.6004},
                            "arithmetic": {"accuracy": 0.5}}, "ours")
    header, _, row = table.split("\n")
    assert header == "|model|C-Eval|CMMLU|MMLU|GSM8K|MATH|MATH23K|Math Avg.|arithmetic|"
    assert row == "|ours|-|-|-|43.34|-|60.04|51.69|50.00|"

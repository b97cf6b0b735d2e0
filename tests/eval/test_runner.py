import pytest
import torch
import torch.nn.functional as F
from test_generation import lively_model

from minimath.errors import UserError
from minimath.eval.generation import GenerationConfig
from minimath.eval.prompts import build_prompt
from minimath.eval.runner import Protocol, markdown_table, rescore, run_task, score_output, select
from minimath.eval.tasks import Doc, Task
from minimath.tokenizer import CompactTokenizer, get_tokenizer


def protocol(name="standard", **kw):
    return Protocol(
        name=name,
        shots=kw.pop("shots", {"toy": 2}),
        extraction=kw.pop("extraction", "auto"),
        subset=kw.pop("subset", None),
        seed=0,
        generation=GenerationConfig(max_new_tokens=8),
        **kw,
    )


CHOICE_DOCS = [
    Doc("1+1?", "B", choices=["1", "2", "3", "4"], subject="math"),
    Doc("2+2?", "D", choices=["1", "2", "3", "4"], subject="math"),
]


def test_multiple_choice_scoring_equals_hand_computed_log_probabilities():
    tok = CompactTokenizer.from_corpus(
        get_tokenizer("qwen"),
        [
            "The following are multiple choice questions "
            "(with answers) about math. 1+1? 2+2? A. 1 B. 2 C. 3 "
            "D. 4 Answer:\n"
        ],
    )
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
    task = Task(
        "gsm8k",
        "numeric",
        [Doc("How many?", "3")],
        fewshot=[Doc("Q1?", "1", solution="It is 1.")],
        prompt_style="gsm8k",
    )
    p = build_prompt(task, task.docs[0], task.fewshot, "standard")
    assert p.text == "<|endoftext|>Question: Q1?\nAnswer: It is 1.\nThe answer is 1.\n\nQuestion: How many?\nAnswer:"
    assert "\n\nQuestion:" in p.stop
    r = build_prompt(task, task.docs[0], task.fewshot, "report")
    assert r.text == "<|endoftext|><|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n"
    ceval = [Doc("1+1?", "B", choices=["1", "2", "3", "4"], subject="high_school_mathematics")]
    mc = build_prompt(Task("ceval", "choice", ceval, prompt_style="ceval"), ceval[0], [], "standard")
    assert mc.text.startswith(
        "<|endoftext|>以下是中国关于高中数学考试的单项选择题，请选出其中的正确答案。\n\n1+1?\nA. 1"
    )
    assert mc.text.endswith("D. 4\n答案：")
    cmmlu = [Doc("1+1?", "B", choices=["1", "2", "3", "4"], subject="agronomy")]
    mc = build_prompt(Task("cmmlu", "choice", cmmlu, prompt_style="cmmlu"), cmmlu[0], cmmlu, "standard")
    assert mc.text == (
        "<|endoftext|>以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n题目：1+1?\nA. 1\nB. 2\nC. 3\nD. 4\n答案是： B"
        "\n\n题目：1+1?\nA. 1\nB. 2\nC. 3\nD. 4\n答案是："
    )


def test_seeded_subset():
    docs = [Doc(str(i), str(i)) for i in range(3000)]
    a, b = select(docs, 1000, seed=5), select(docs, 1000, seed=5)
    assert a == b and len(a) == 1000 and select(docs, 1000, seed=6) != a
    assert select(docs, None, 0) == list(enumerate(docs))


def test_rescore_records_reasons_and_missing_predictions():
    task = Task("t", "numeric", [Doc("a", "5"), Doc("b", "7"), Doc("c", "9"), Doc("d", "1"), Doc("e", "x")])
    summary, records = rescore(
        task,
        [
            {"doc_id": 0, "output": "The answer is 5."},
            {"doc_id": 1, "output": ""},
            {"doc_id": 2, "output": "It is 8."},
            {"doc_id": 4, "output": "x"},
        ],
        protocol(),
    )
    assert (summary["n"], summary["accuracy"], summary["unscorable_golds"]) == (5, 0.2, 1)
    assert [r["reason"] for r in records] == [
        "",
        "empty output",
        "wrong answer",
        "missing prediction",
        "gold is not a number",
    ]


def test_rescore_scores_the_protocols_subset_and_rejects_unknown_doc_ids():
    task = Task("t", "numeric", [Doc(str(i), str(i)) for i in range(50)])
    report = protocol("report", subset=10, extraction="last_number")
    chosen = [doc_id for doc_id, _ in select(task.docs, 10, 0)]
    summary, records = rescore(task, [{"doc_id": i, "output": f"答：{i}"} for i in chosen], report)
    assert (summary["n"], summary["accuracy"]) == (10, 1.0) and [r["doc_id"] for r in records] == chosen
    outside = next(i for i in range(50) if i not in chosen)
    with pytest.raises(UserError, match=f"doc_id {outside}: not one of the 10 items"):
        rescore(task, [{"doc_id": outside, "output": "1"}], report)
    with pytest.raises(UserError, match="doc_id 99"):
        rescore(task, [{"doc_id": 99, "output": "1"}], protocol())
    with pytest.raises(UserError, match="two predictions for doc_id 0"):
        rescore(task, [{"doc_id": 0, "output": "1"}, {"doc_id": 0, "output": "2"}], protocol())


def test_few_shot_prompts_drop_exemplars_to_fit_and_record_what_ran():
    tok = get_tokenizer("qwen")
    model = lively_model(max_seq_len=64)
    model.tok_embeddings = torch.nn.Embedding(tok.vocab_size, 32)
    long_shot = Doc("How many apples are there in " + "a very big basket " * 3 + "?", "4", solution="It is 4.")
    task = Task(
        "toy",
        "numeric",
        [Doc("1+1?", "2"), Doc("How many pears " + "in the big red crate " * 12 + "?", "1")],
        fewshot=[long_shot, long_shot],
        prompt_style="gsm8k",
        fewshot_source="fixed:toy.jsonl",
    )
    summary, records = run_task(model, tok, task, protocol(shots={"toy": 2}))
    p = summary["protocol"]
    assert p["shots"] == 2 and p["fewshot_source"] == "fixed:toy.jsonl"
    assert p["generation"]["max_new_tokens"] == 8 and p["generation"]["stop"] == ["\n\nQuestion:", "Question:"]
    assert [r["shots"] for r in records] == [1, 0] and p["shots_used"] == {"min": 0, "max": 1}
    assert [r["truncated"] for r in records] == [False, True] and p["truncated"] == 1
    assert all(len(tok.encode(r["prompt"])) <= 64 - 8 for r in records[:1])


def test_few_shot_without_any_exemplar_is_an_error():
    task = Task("mmlu", "choice", CHOICE_DOCS, prompt_style="mmlu")
    with pytest.raises(UserError, match="5-shot needs few-shot exemplars"):
        run_task(lively_model(), get_tokenizer("qwen"), task, protocol(shots={"mmlu": 5}))


def test_multiple_choice_needs_the_answer_letters_in_the_vocabulary():
    tok = CompactTokenizer(get_tokenizer("qwen"), get_tokenizer("qwen").encode("1+1? A. 1 B. 2 Answer:"))
    task = Task("toy", "choice", CHOICE_DOCS, prompt_style="mmlu")
    with pytest.raises(UserError, match="has no token for ' C', ' D'"):
        run_task(lively_model(), tok, task, protocol(shots={}))
    assert tok.unknown_count(tok.encode(" C D")) == 2
    kept = CompactTokenizer.keeping(get_tokenizer("qwen"), [])
    assert kept.unknown_count(kept.encode("Answer: C\n#### 1,234\nThe answer is 56.7%.\n答：(8/9)")) == 0


def test_markdown_table_shows_the_tasks_run_in_the_report_order_in_percent():
    table = markdown_table(
        {"arithmetic": {"accuracy": 0.5}, "math23k": {"accuracy": 0.6004}, "gsm8k": {"accuracy": 0.4334}},
        "run/stage4-bs2.5K",
    )
    header, _, row = table.split("\n")
    assert header == "|model|GSM8K|MATH23K|Math Avg.|arithmetic|"
    assert row == "|run/stage4-bs2.5K|43.34%|60.04%|51.69%|50.00%|"
    header, _, row = markdown_table({"equations": {"accuracy": 0.25}}, "x").split("\n")
    assert header == "|model|equations|" and row == "|x|25.00%|"  # no math task: no Math Avg.


@pytest.mark.parametrize(
    ("gold", "output", "correct", "reason"),
    [
        # what the training documents write (steps, then the solution on a "So" line), and what a model writes back
        (
            "x = -1, y = 10",
            "Add the equations to eliminate y: 8x = -8.\nDivide both sides by 8: x = -1.\n"
            "Substitute into x + y = 9: y = 9 - (-1) = 10.\nSo x = -1, y = 10.",
            True,
            "",
        ),
        ("x = -1, y = 10", "Add the equations to eliminate y: 8x = -8.\nSo x = -1, y = 11.", False, "wrong answer"),
        ("x = -1, y = 10", "Divide both sides by 8: x = -1.\nSo x = -1.", False, "wrong answer"),  # y not stated
        ("x = 12", "两边同时减去 20，得 4x = 48。\n两边同时除以 4，得 x = 12。\n所以 x = 12。", True, ""),
        ("x = 12", "Subtract 20 from both sides: 4x = 48.\nSo x = 12.\n\nSolve 3x = 9.\nSo x = 3.", True, ""),
        ("x = 3", "So x = 12.\nSo x = 3.", False, "wrong answer"),  # the first stated solution counts
        ("x = 12", "Substitute into x + y = 12", False, "no answer found"),  # an equation is not a solution
        ("x = 12", "So x = 12, x = 13.", False, "no answer found"),  # contradicting itself states nothing
        ("x = 12", "Subtract 20 from both sides: 4x = 48.\nDivide both sides by 4: x = 12.", True, ""),
    ],
)
def test_an_equations_solution_is_scored_on_every_unknown_it_states(gold, output, correct, reason):
    task = Task("equations", "assignments", [Doc("Solve 4x + 20 = 68.", gold)], prompt_style="equation")
    verdict = score_output(task, task.docs[0], output, Protocol.heldout())
    assert (verdict["correct"], verdict["reason"]) == (correct, reason)


def test_rescore_records_form_ok_beside_correct_and_counts_it():
    fraction = "What is $0.4 \\cdot 0.48$? Express your answer as a common fraction."
    task = Task("math", "math", [Doc(fraction, "\\frac{24}{125}"), Doc(fraction, "\\frac{24}{125}"), Doc("2+2?", "4")])
    summary, records = rescore(
        task,
        [
            {
                "doc_id": 0,
                "output": "$0.4 \\cdot 0.48 = \\frac{2}{5} \\cdot \\frac{12}{25} = \\boxed{\\frac{24}{125}}$",
            },
            {"doc_id": 1, "output": "$\\frac{4}{10} \\cdot \\frac{48}{100} = \\boxed{\\frac{72}{375}}$"},
            {"doc_id": 2, "output": "$2 + 2 = \\boxed{4}$"},
        ],
        protocol(),
    )
    assert [(r["correct"], r["form_ok"]) for r in records] == [(True, True), (True, False), (True, None)]
    assert (summary["accuracy"], summary["form_checked"], summary["accuracy_with_form"]) == (1.0, 2, 2 / 3)


def test_a_numeric_task_reads_a_percent_for_a_what_percent_question():
    task = Task("gsm8k", "numeric", [Doc("Of 30 students 6 are left-handed. What percent are left-handed?", "20")])
    output = "6 out of 30 is 6 / 30 = 0.2 of the class.\n0.2 * 100 = 20%.\nThe answer is 20%."
    for p in (protocol(), protocol("report", extraction="last_number")):
        assert score_output(task, task.docs[0], output, p)["correct"]

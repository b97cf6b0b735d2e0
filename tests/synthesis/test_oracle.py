"""The oracle teacher writes, for every shipped prompt, a reply that parses, whose every `a op b = c` step and
answer are exact, whose tool program prints what it claims, and which is the same for the same request."""

import random
import re
import subprocess
import sys

import pytest

from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.equations import LinearEquationSource
from minimath.data.synth.expression import numeric_value
from minimath.data.synth.general import GeneralTextSource
from minimath.data.synth.textbook import TextbookSource
from minimath.data.synth.word_problems import WordProblemSource
from minimath.synthesis.prompts import PromptSet, parse, render
from minimath.synthesis.records import Request, text_hash
from minimath.synthesis.teachers.oracle import MODEL, OracleTeacher

PROMPTS = PromptSet.shipped()
GENERATORS = [
    TextbookSource(),
    WordProblemSource(),
    LinearEquationSource(),
    ArithmeticSource(worked_steps=True),
    GeneralTextSource(),
]
TEXTS = [g.document(random.Random(i)) for i, g in enumerate(GENERATORS)] + ["No numbers here at all.", "没有数字。"]
STEP = re.compile(r"^(?:Step \d+: |第\d+步：)(.+) = ([^=]+)$")


def request(prompt_id: str, text: str, sample: int = 0) -> Request:
    return Request(prompt_id, "test#0", text_hash(text), render(PROMPTS.get(prompt_id), text), sample_index=sample)


@pytest.fixture(scope="module")
def replies():
    requests = [request(t.id, text, s) for t in PROMPTS.templates for text in TEXTS for s in range(2)]
    return list(OracleTeacher().complete(requests))


def test_one_successful_completion_per_request_with_estimated_tokens(replies):
    assert len(replies) == len(PROMPTS.templates) * len(TEXTS) * 2
    assert all(c.ok and c.text and c.finish_reason == "stop" for c in replies)
    assert all(c.tokens_out == len(c.text) // 4 and c.tokens_in > 0 for c in replies)
    assert OracleTeacher.backend == "oracle" and "stand-in" in MODEL


def test_every_reply_parses_with_an_answer_equal_to_its_last_step(replies):
    for c in replies:
        template = PROMPTS.get(c.request.prompt_id)
        example = parse(c.text, template)
        assert example.problem and example.solution and example.answer
        if template.tool:
            assert numeric_value(example.answer) == numeric_value(example.claimed_output)
        else:
            last = [STEP.match(line) for line in example.solution.splitlines() if STEP.match(line)][-1]
            assert numeric_value(example.answer) == numeric_value(last[2])


def test_every_step_recomputes(replies):
    steps = [STEP.match(line) for c in replies for line in c.text.splitlines() if STEP.match(line)]
    assert len(steps) > len(replies) // 2
    for step in steps:
        assert numeric_value(step[1]) == numeric_value(step[2]), step[0]


def test_competition_answers_are_integers_and_aime_answers_below_1000(replies):
    for c in replies:
        stage = PROMPTS.get(c.request.prompt_id).stage
        if stage in ("amc8", "amc10", "amc12", "aime"):
            value = numeric_value(parse(c.text, PROMPTS.get(c.request.prompt_id)).answer)
            assert value.denominator == 1 and (stage != "aime" or 0 <= value <= 999), c.text


def test_replies_are_in_the_prompts_language(replies):
    for c in replies:
        template = PROMPTS.get(c.request.prompt_id)
        assert ("答案是" in c.text) == (template.language == "zh")


def test_tool_programs_print_what_they_claim(replies):
    for c in replies:
        template = PROMPTS.get(c.request.prompt_id)
        if template.tool:
            example = parse(c.text, template)
            run = subprocess.run([sys.executable, "-c", example.program], capture_output=True, text=True, timeout=30)
            assert run.returncode == 0 and run.stdout.strip() == example.claimed_output == example.answer


def test_the_oracle_is_deterministic_per_request():
    teacher = OracleTeacher()
    requests = [request(t.id, TEXTS[0], s) for t in PROMPTS.templates for s in range(3)]
    first = [c.text for c in teacher.complete(requests)]
    assert [c.text for c in OracleTeacher().complete(requests)] == first
    assert [c.text for c in teacher.complete(reversed(requests))] == first[::-1]
    assert len(set(first)) > len(first) * 2 // 3  # samples and prompts differ


def test_problems_use_the_seed_texts_numbers():
    text = "A farmer packs 37 eggs into each crate and sends 29 crates to market."
    problems = [c.text for s in range(20) for c in OracleTeacher().complete([request("grade_school_en", text, s)])]
    assert sum("37" in p or "29" in p for p in problems) >= 5


def test_the_oracle_answers_from_a_given_prompt_block_and_fails_other_prompts():
    teacher = OracleTeacher(
        {
            "templates": {
                "only_en": {
                    "stage": "middle_school",
                    "language": "en",
                    "tool": False,
                    "weight": 1,
                    "system": "s",
                    "user": "Write a problem about: {text}",
                }
            }
        }
    )
    template = teacher.prompt_set.get("only_en")
    good = Request("only_en", "x#0", text_hash("50% of 80"), render(template, "50% of 80"))
    [answer] = teacher.complete([good])
    assert parse(answer.text, template).answer
    [unknown] = teacher.complete([request("grade_school_en", "Tom has 3 apples.")])
    assert not unknown.ok and unknown.failure == "prompt not in the oracle's prompt set"

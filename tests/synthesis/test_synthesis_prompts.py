"""The shipped prompt sets load and render; the seeded mix is stable and follows the weights; parse reads real-
shaped replies and names what is wrong with malformed ones."""

from collections import Counter
from dataclasses import replace

import pytest
from hydra import compose, initialize_config_dir

from minimath.config import CONF_DIR
from minimath.errors import UserError
from minimath.synthesis import prompts as prompts_module
from minimath.synthesis.prompts import ParseFailure, PromptSet, TextTooLong, choose_prompt, parse, render, seed_text

OPTIONS = sorted(p.stem for p in (CONF_DIR / "prompts").glob("*.yaml"))
STAGES = ("grade_school", "middle_school", "high_school", "college", "amc8", "amc10", "amc12", "aime")


def composed(option: str) -> PromptSet:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=None, overrides=[f"+prompts={option}"])
    return PromptSet.from_config(cfg.prompts)


def entry(**changes) -> dict:
    base = {
        "stage": "grade_school",
        "language": "en",
        "tool": False,
        "weight": 1.0,
        "system": "s",
        "user": "Text: {text}",
    }
    return {"templates": {"p": {**base, **changes}}}


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_loads_and_renders(option):
    prompt_set = composed(option)
    assert prompt_set.templates
    for template in prompt_set.templates:
        messages = render(template, "Tom has 12 apples.")
        assert [role for role, _ in messages] == ["system", "user"]
        assert "${" not in messages[0][1] + messages[1][1]  # interpolations resolved
        assert "Tom has 12 apples." in messages[1][1] and messages[1][1].endswith("## Question\n")
        assert seed_text(template, messages) == "Tom has 12 apples."


def test_all_holds_every_stage_in_both_languages_and_the_tool_variant():
    ids = {t.id for t in composed("all").templates}
    assert ids == {f"{s}_{lang}" for s in STAGES for lang in ("en", "zh")} | {"tool_en", "tool_zh"}
    assert {t.id for t in PromptSet.shipped().templates} == ids
    zh = composed("cot_zh").get("aime_zh")
    assert zh.language == "zh" and "答案是" in zh.user and "999" in zh.user


def test_render_refuses_a_text_over_the_limit():
    template = composed("cot_en").templates[0]
    assert render(template, "x" * 10, max_text_chars=10)
    with pytest.raises(TextTooLong):
        render(template, "x" * 11, max_text_chars=10)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"user": "no placeholder"}, "{text} exactly once"),
        ({"language": "fr"}, "language must be one of en, zh"),
        ({"weight": 0}, "weight must be positive"),
        ({"colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_invalid_templates_are_one_line_user_errors(changes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        PromptSet.from_config(entry(**changes))


def test_missing_fields_and_templates_are_user_errors():
    block = entry()
    del block["templates"]["p"]["system"]
    with pytest.raises(UserError, match="missing system"):
        PromptSet.from_config(block)
    with pytest.raises(UserError, match="templates"):
        PromptSet.from_config({"name": "empty"})


def test_duplicate_ids_across_options_are_a_user_error(tmp_path, monkeypatch):
    (tmp_path / "prompts").mkdir()
    for name in ("a", "b"):
        (tmp_path / "prompts" / f"{name}.yaml").write_text(
            "templates:\n  same:\n    {stage: grade_school, language: en, tool: false, weight: 1, system: s, "
            "user: 'T {text}'}\n"
        )
    monkeypatch.setattr(prompts_module, "CONF_DIR", tmp_path)
    with pytest.raises(UserError, match="same in more than one option"):
        PromptSet.shipped()


def test_the_mix_depends_only_on_seed_and_seed_id():
    prompt_set = composed("all")
    ids = [f"math_text#{i}" for i in range(200)]
    first = {i: choose_prompt(prompt_set, i, 1234).id for i in ids}
    assert {i: choose_prompt(prompt_set, i, 1234).id for i in reversed(ids)} == first
    assert {i: choose_prompt(prompt_set, i, 1234).id for i in ids[50:60]} == {i: first[i] for i in ids[50:60]}
    assert {i: choose_prompt(prompt_set, i, 99).id for i in ids} != first


def test_the_mix_follows_the_weights():
    prompt_set = composed("all")  # 16 chain-of-thought templates of weight 1, two tool templates of weight 4
    counts = Counter(choose_prompt(prompt_set, f"doc#{i}", 7).id for i in range(6000))
    assert set(counts) == {t.id for t in prompt_set.templates}
    assert 0.30 < (counts["tool_en"] + counts["tool_zh"]) / 6000 < 0.37  # expected 1/3
    assert 3 * counts["grade_school_en"] < counts["tool_en"] < 6 * counts["grade_school_en"]  # expected 4×


@pytest.fixture(scope="module")
def cot():
    return composed("cot_en").get("grade_school_en")


@pytest.fixture(scope="module")
def tool():
    return composed("tool_en").get("tool_en")


def test_parse_accepts_an_echoed_header_and_drops_chatter_around_the_example(cot):
    reply = (
        "Sure! Here is a problem.\n\n## Question\nTom has 3 bags of 12 apples. How many apples?\n## Solution\n"
        "Step 1: 3 × 12 = 36\nThe answer is 36.\n\nI hope this helps! Let me know if you need more."
    )
    example = parse(reply, cot, seed_id="s#1", text_hash="abc")
    assert example.problem == "Tom has 3 bags of 12 apples. How many apples?"
    assert example.solution == "Step 1: 3 × 12 = 36\nThe answer is 36."
    assert (example.answer, example.prompt_id, example.seed_id, example.text_hash) == ("36", cot.id, "s#1", "abc")


def test_parse_reads_a_reply_that_continues_the_prompts_question_header(cot):
    example = parse(
        "A rope is 10 m long; 3/4 of it is used. How much is left?\n## Solution\n"
        "Step 1: 1 - 3/4 = 1/4\nStep 2: 10 × 1/4 = 2.5\nThe answer is 2.5 m.",
        cot,
    )
    assert example.problem.startswith("A rope") and example.answer == "2.5"


def test_parse_ends_the_example_where_a_run_on_question_starts(cot):
    example = parse(
        "Q one?\n## Solution\n2 + 2 = 4\nThe answer is 4.\n## Question\nQ two?\n## Solution\nThe answer is 5.", cot
    )
    assert example.answer == "4" and "Q two" not in example.solution


def test_parse_reads_chinese_full_width_punctuation(cot):
    zh = composed("cot_zh").get("grade_school_zh")
    example = parse(
        "## Question\n小明有１２个苹果，吃了３个，还剩几个？\n## Solution\n第1步：１２－３＝９\n答案是：９。", zh
    )
    assert example.answer == "9"


@pytest.mark.parametrize(
    "reply,reason",
    [
        ("Tom has 5 apples.\n\nStep 1: 5 + 1 = 6\nThe answer is 6.", "no solution section"),
        ("## Solution\nStep 1: 5 + 1 = 6\nThe answer is 6.", "no question section"),
        ("## Question\n\n## Solution\nThe answer is 6.", "no question section"),
        ("## Question\nQ?\n## Solution\nStep 1: 5 + 1 = 6\nSo Tom has 6 apples now.", "no answer marker"),
        (
            "## Question\nQ?\n## Solution\n5 + 1 = 6\nThe answer is 6.\n## Solution\nAnother way: 6.\nThe answer is 6.",
            "two solution sections",
        ),
        ("## Question\nFind f(x) = x^2 + 1.\n## Solution\nThe answer is x^2 + 1.", "answer does not parse as a number"),
        ("## Question\nQ?\n## Solution\nThe answer is \\sqrt{2}.", "answer does not parse as a number"),
    ],
)
def test_parse_failures_say_what_is_missing(cot, reply, reason):
    with pytest.raises(ParseFailure) as caught:
        parse(reply, replace(cot, response_prefix=""))
    assert caught.value.reason == reason


def test_parse_reads_a_tool_reply_and_names_missing_blocks(tool):
    reply = (
        "## Question\nWhat is 2^10?\n## Solution\nCompute it.\n```python\nprint(2 ** 10)\n```\n"
        "```output\n1024\n```\nThe answer is 1024."
    )
    example = parse(reply, tool)
    assert (example.program, example.claimed_output, example.answer) == ("print(2 ** 10)\n", "1024", "1024")
    with pytest.raises(ParseFailure, match="no python block"):
        parse("## Question\nQ?\n## Solution\n2 ** 10 = 1024\nThe answer is 1024.", tool)
    with pytest.raises(ParseFailure, match="no output block"):
        parse("## Question\nQ?\n## Solution\n```python\nprint(2 ** 10)\n```\nThe answer is 1024.", tool)
    with pytest.raises(ParseFailure, match="no answer marker"):  # a marker only inside the program does not count
        parse(
            "## Question\nQ?\n## Solution\n```python\nprint('The answer is', 1024)\n```\n```output\n"
            "The answer is 1024\n```\nDone.",
            tool,
        )

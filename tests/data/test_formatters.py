import pytest

from minimath.data.formatters import SkipRecord, get_formatter

# One record per public schema, as the datasets publish them.
RECORDS = {
    "text": ({"text": "A textbook paragraph about triangles."}, {}, "A textbook paragraph about triangles."),
    "wanjuan": ({"id": "1", "content": "新闻正文。", "title": "标题"}, {"field": "content"}, "新闻正文。"),
    "gsm8k": (
        {"question": "Tom has 3 apples and buys 2 more. How many?", "answer": "He has 3+2=<<3+2=5>>5 apples.\n#### 5"},
        {},
        "Question: Tom has 3 apples and buys 2 more. How many?\nAnswer: He has 3+2=5 apples.\nThe answer is 5.",
    ),
    "math23k": (
        {
            "id": "10",
            "original_text": "一本书120页，看了80%，看了多少页？",
            "segmented_text": "一 本 书",
            "equation": "x=120*80%",
            "ans": "96",
        },
        {},
        "题目：一本书120页，看了80%，看了多少页？\n解答：列式 x = 120 × 80%\n第1步：120 × 80% = 96\n答：96",
    ),
    "ape210k": (
        {
            "id": "1",
            "original_text": "A pie is cut; 1/4 eaten. What fraction is left?",
            "equation": "x=1-((1)/(4))",
            "ans": "0.75",
        },
        {},
        "Question: A pie is cut; 1/4 eaten. What fraction is left?\nSolution: Let x = 1 - 1/4.\n"
        "Step 1: 1 - 1/4 = 0.75\nThe answer is 0.75.",
    ),
    "math": (
        {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
        {},
        "Problem: What is $1+1$?\nSolution: It is $\\boxed{2}$.",
    ),
    "instruction": ({"instruction": "Solve 2x=4.", "output": "x=2", "source": "data/CoT/gsm"}, {}, "Solve 2x=4.\nx=2"),
    "belle": (
        {"instruction": "翻译", "input": "hello", "output": "你好"},
        {"prompt": "instruction", "extra": "input", "response": "output"},
        "翻译\nhello\n你好",
    ),
    "mnbvc_qa": (
        {"id": 1, "问": "1+1等于几？", "答": "等于2。", "来源": "x", "元数据": {}},
        {},
        "问：1+1等于几？\n答：等于2。",
    ),
    "tiny_codes": (
        {"prompt": "Write a function.", "response": "def f(): pass"},
        {},
        "Write a function.\ndef f(): pass",
    ),
}
FORMATTER_OF = {"wanjuan": "text", "ape210k": "ape210k", "belle": "instruction"}


@pytest.mark.parametrize("schema", sorted(RECORDS))
def test_formatter_on_its_schema(schema):
    record, options, expected = RECORDS[schema]
    assert get_formatter(FORMATTER_OF.get(schema, schema), **options)(record) == expected


@pytest.mark.parametrize(
    "name,record,reason",
    [
        ("text", {"content": "x"}, "missing field 'text'"),
        ("text", {"text": 5}, "not text"),
        ("gsm8k", {"question": "q", "answer": "no final line"}, "####"),
        ("math23k", {"original_text": "q", "equation": "x=1+1", "ans": "3"}, "gives 2"),
        ("math23k", {"original_text": "q", "ans": "3"}, "lacks equation"),
        ("math", {"problem": "p", "solution": "no box"}, "boxed"),
        ("mnbvc_qa", {"问": "q"}, "missing field '答'"),
    ],
)
def test_unusable_records_are_skipped_with_a_reason(name, record, reason):
    with pytest.raises(SkipRecord, match=reason):
        get_formatter(name)(record)


def test_unknown_formatter():
    with pytest.raises(ValueError, match="unknown formatter"):
        get_formatter("nope")

"""`data=report` on files in each source's published layout (tests/data/fixtures/report: `raw/` is a
`paths.raw_root`, `hub/` local copies of the hub datasets in their repositories' file layout), its stage budgets
against the report's stage tables, and one stage of it prepared, mixed and trained by `train.py`'s path."""

import json
from pathlib import Path

import pytest

from minimath.data.formatters import get_formatter
from minimath.data.mixture import StagePlan
from minimath.data.sources import FileSource, HubSource, SourceStats
from minimath.tb import read_scalars
from minimath.training import run

from conftest import TINY_TRAIN_OVERRIDES, compose_config

FIXTURES = Path(__file__).parent / "fixtures" / "report"
RAW, HUB = FIXTURES / "raw", FIXTURES / "hub"

# The hub sources of conf/data/report.yaml, each as a local copy in its repository's layout: (builder, files).
HUB_COPIES = {
    "tiny_strange_textbook": ("parquet", "nampdn-ai/tiny-strange-textbooks/*.parquet"),
    "tiny_code": ("parquet", "nampdn-ai/tiny-codes/data/*.parquet"),
    "code": ("parquet", "nampdn-ai/tiny-codes/data/*.parquet"),
    "wikipedia": ("parquet", "wikimedia/wikipedia/20231101.zh/*.parquet"),
    "common_crawl_math": ("parquet", "open-web-math/open-web-math/data/*.parquet"),
    "belle_chat": ("json", "BelleGroup/train_0.5M_CN/Belle_open_source_0.5M.json"),
    "gsm8k_train": ("parquet", "openai/gsm8k/main/*.parquet"),
    "math_instruct": ("json", "TIGER-Lab/MathInstruct/MathInstruct.json"),
}
SYNTHETIC = ("in_house_problems", "basic_math", "equations")

# Per source: the first document its fixture yields, and what it skips (reason: count).
EXPECTED = {
    "tiny_strange_textbook": ("Chapter 1: The Curious Geometry of Soap Bubbles. A soap film", {}),
    "wanjuan_news": ("中新网北京电 今年全国秋粮收购进展顺利", {"malformed JSON": 1}),
    "tiny_code": ("Write a Python function that returns the sum of the squares of a list of integers.\ndef", {}),
    "wikipedia": ("数学是研究数量、结构以及空间等概念及其变化的一门学科", {}),
    "common_crawl_math": ("# Telescoping sums\n\nThe sum of 1/(n(n+1))", {}),
    "textbooks_math": ("Definition 1.1. A group is a set G", {}),
    "wikipedia_math": ("In mathematics, a prime number is a natural number", {}),
    "wanjuan_exam": (
        "下列属于同种物质的是（）\nA. 冰和水\nB. 铁和铁锈\nC. 镁和氧化镁\nD. 金刚石和石墨\n答案：A\n解析：冰和水",
        {"exam item has neither an answer nor an explanation": 1},
    ),
    "belle_chat": ("给定一个数字列表，计算它们的平均值。\n3, 5, 7, 9\n这四个数的和是24", {}),
    "open_source_problems": (
        "题目：甲数除以乙数的商是1.5，如果甲数增加20，则甲数是乙数的4倍．原来甲数=．\n解答：列式 x = 20 ÷ (4 - 1.5) × 1.5",
        {"equation 'x=2+3' gives 5, but ans is '6'": 1},
    ),
    "ape210k": ("题目：小王要将150千克含药量20%的农药稀释成含药量5%的药水．", {"record lacks equation": 1}),
    "gsm8k_train": (
        "Question: A baker makes 24 muffins and sells them in boxes of 4. How many boxes does she fill?\n"
        "Answer: She fills 24 / 4 = 6 boxes.\nThe answer is 6.",
        {"answer has no '#### N' line": 1},
    ),
    "math_qa": ("问：计算：25×4+36÷6等于多少？\n答：先算乘除", {"missing field '答'": 1}),
    "math_instruct": (
        "Mia buys 4 packs of pencils with 6 pencils in each pack. How many pencils does she have?\nShe",
        {},
    ),
    "math_cot": ("题目：学校买来8箱粉笔，每箱24盒，用去了75盒，还剩多少盒？\n解答：列式 x = 8 × 24 - 75", {}),
}
EXPECTED["code"] = EXPECTED["tiny_code"]


def fixture_overrides() -> list[str]:
    """Every file source read from the fixtures' raw root, every hub source from its local copy."""
    overrides = [f"paths.raw_root={RAW}"]
    for name, (builder, files) in HUB_COPIES.items():
        overrides += [
            f"data.sources.{name}.path={builder}",
            f"++data.sources.{name}.config_name=null",
            f"++data.sources.{name}.data_files={HUB / files}",
        ]
    return overrides


@pytest.fixture(scope="module")
def report_sources(tmp_path_factory) -> dict:
    """`data=report`'s sources with the fixture overrides, as the entry points compose them."""
    cfg = compose_config(["data=report", *fixture_overrides()], tmp_path_factory.mktemp("cfg"))
    return {name: src for name, src in cfg.data.sources.items() if name not in SYNTHETIC}


def test_every_report_source_has_a_fixture_in_its_layout(report_sources):
    assert set(report_sources) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_source_file_yields_its_formatted_text_and_counts_its_skips(name, report_sources):
    import hydra

    source = hydra.utils.instantiate(report_sources[name], name=name)
    assert isinstance(source, HubSource if name in HUB_COPIES else FileSource)
    stats = SourceStats(name)
    docs = [text for text, _ in source.documents(stats)]
    first, skipped = EXPECTED[name]
    assert docs[0].startswith(first)
    assert len(docs) == 3 and dict(stats.skipped) == skipped
    assert stats.read == 3 + sum(skipped.values())


def test_compressed_files_are_read_as_published(tmp_path):
    """`.gz` and `.tar.gz` members are streamed; the place of a bad line names the archive member."""
    news = next((RAW / "wanjuan1.0/nlp/CN/ChinaNews-cn").glob("*.jsonl.tar.gz"))
    stats = SourceStats("news")
    docs = list(
        FileSource("news", [str(news)], formatter="text", formatter_options={"field": "content"}).documents(stats)
    )
    assert len(docs) == 3 and docs[0][1] == f"{news}!{news.name.removesuffix('.tar.gz')}:1"
    assert stats.first_offender["malformed JSON"].endswith(".jsonl:4")
    (tmp_path / "plain.jsonl").write_text(json.dumps({"text": "a plain file next to the archives"}) + "\n")
    assert [t for t, _ in FileSource("p", [str(tmp_path / "*.jsonl*")]).documents(SourceStats("p"))] == [
        "a plain file next to the archives"
    ]


def test_wanjuan_exam_items_without_options_use_the_free_answer():
    record = {"q_main": "8+5的和是多少？", "option_a": "", "std_ans": "", "answer": "13", "answer_detail": ""}
    assert get_formatter("wanjuan_exam")(record) == "8+5的和是多少？\n答案：13"


def new_and_replayed(stages, stage: str) -> tuple[float, dict]:
    """(tokens of the stage's own sources, {earlier stage: tokens replayed}) per epoch, from its shares."""
    spec = stages[stage]
    total = sum(float(e.share) for e in spec.mix)
    tokens = lambda e: float(e.share) / total * float(spec.tokens)  # noqa: E731
    return sum(tokens(e) for e in spec.mix if "source" in e), {e.stage: tokens(e) for e in spec.mix if "stage" in e}


def test_stage_budgets_match_the_report_stage_tables(tmp_path):
    """MISSION.md's stage tables: stage 2 adds 0.899B to all of stage 1; stage 3's chart adds 3.57B to 1.247B of
    stages 1-2 (the text's 3.45B cannot also hold at 4.82B: conf/data/report.yaml says why); stage 4 adds 6.48B
    to all of stage 3 (4.82B), whose replay of stages 1-2 is the only one."""
    stages = compose_config(["data=report"], tmp_path).data.stages
    new, replayed = new_and_replayed(stages, "2")
    assert new == pytest.approx(0.899e9, rel=0.01) and replayed == {1: pytest.approx(9.22e9, rel=0.001)}
    new, replayed = new_and_replayed(stages, "3")
    assert new == pytest.approx(3.57e9, rel=0.002)
    assert replayed == {1: pytest.approx(0.922e9, rel=0.01), 2: pytest.approx(0.325e9, rel=0.01)}
    new, replayed = new_and_replayed(stages, "4")
    assert new == pytest.approx(6.48e9, rel=0.001) and replayed == {3: pytest.approx(4.82e9, rel=0.001)}


def test_a_report_stage_prepares_mixes_and_trains_from_the_fixtures(tmp_path, one_torch_thread):
    """Stage 4 from scratch (its mixture holds stage 3, which holds stages 1 and 2: every source of the report),
    with the token budgets scaled down and the tiny model."""
    tiny = [
        o
        for o in TINY_TRAIN_OVERRIDES
        if o.split("=")[0].split(".")[0] in ("model", "hardware", "batch", "train", "trainer")
    ]
    cfg = compose_config(
        [
            "data=report",
            "model=nano",
            "stage=4",
            "init_from=none",
            *fixture_overrides(),
            f"paths.data_root={tmp_path / 'prepared'}",
            f"paths.eval_root={tmp_path / 'no-benchmarks'}",
            "data.workers=1",
            *[f"data.sources.{name}.documents_count=20" for name in SYNTHETIC],
            *[f"data.stages.{s}.tokens={n}" for s, n in {"1": 2048, "2": 2048, "3": 1024, "4": 2048}.items()],
            *tiny,
            "train.max_tokens=256",
            "callbacks.heldout_eval.n=1",
            "callbacks.heldout_eval.max_new_tokens=1",
        ],
        tmp_path / "run",
    )
    run(cfg)
    manifest = json.loads((Path(cfg.data.dir) / "manifest.json").read_text())
    assert set(manifest["sources"]) == set(EXPECTED) | set(SYNTHETIC)
    for name, (_, skipped) in EXPECTED.items():
        assert manifest["sources"][name]["documents"] == 3, name
        assert manifest["sources"][name]["stats"]["skipped"] == skipped, name
    plan = StagePlan(cfg.data.dir, manifest["sources"], cfg.data.stages, "4", 32, 0)
    assert set(plan.source_names) == set(manifest["sources"])  # stage 4 draws from every source
    assert (tmp_path / "run" / "checkpoints" / "final.ckpt").is_file()
    assert sorted(read_scalars(tmp_path / "run" / "tb", "train/loss")) == [128, 256]

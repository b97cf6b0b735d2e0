import json
import math

import pytest
import yaml
from scipy import stats
from torch.utils.tensorboard import SummaryWriter

from minimath import report
from minimath.errors import UserError


def job(root, name, overrides, heldout=None, losses=None, results=None, precision=None, tokens_per_step=1):
    """A job directory as a sweep leaves it: Hydra's overrides, and the metrics files a run writes (scalars logged
    against tokens seen: `tokens_per_step` per logged value)."""
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if heldout is not None:
        (d / "heldout.json").write_text(json.dumps({"key": {}, "row": {"stage": 4, "batch": "2.5K", **heldout}}))
    if losses is not None:
        with SummaryWriter(str(d / "tb")) as w:
            for step, v in enumerate(losses):
                w.add_scalar("train/loss", v, (step + 1) * tokens_per_step)
    if results is not None:
        (d / "results.json").write_text(json.dumps(results))
    if precision is not None:
        (d / "train.log").write_text(f"stage 4: from scratch\n  precision {precision} (auto: measured)\n")
    return d


@pytest.fixture
def sweep(tmp_path):
    """Two schedules × 3 seeds; cosine's accuracy is wsd's + 1, 2, 3 on seeds 1, 2, 3."""
    for seed, acc in zip((1, 2, 3), (0.50, 0.60, 0.70), strict=True):
        job(tmp_path, f"wsd-{seed}", [f"seed={seed}", "scheduler=wsd", "stage=4"], {"arithmetic": acc})
        job(tmp_path, f"cos-{seed}", [f"seed={seed}", "scheduler=cosine", "stage=4"], {"arithmetic": acc + seed / 100})
    job(tmp_path, "crashed", ["seed=4", "scheduler=wsd", "stage=4"])  # no metrics
    return tmp_path


def test_groups_by_the_swept_key_with_mean_and_sample_std(sweep):
    r = report.build(sweep, metrics=["heldout/arithmetic"])
    assert r.by == ["scheduler"] and len(r.runs) == 6
    cells = r.summaries()
    assert cells["scheduler=wsd"]["heldout/arithmetic"]["mean"] == pytest.approx(60.0)
    assert cells["scheduler=wsd"]["heldout/arithmetic"]["std"] == pytest.approx(10.0)
    assert cells["scheduler=cosine"]["heldout/arithmetic"]["mean"] == pytest.approx(62.0)
    assert r.empty == [str(sweep / "crashed")]


def test_equal_seed_sets_are_compared_by_a_paired_t_test(sweep):
    (c,) = report.build(sweep, metrics=["heldout/arithmetic"], baseline={"scheduler": "cosine"}).comparisons()
    # wsd − cosine per seed: −1, −2, −3 → mean −2, sd 1, se 1/√3, t = −3.464 on 2 df → p = 0.0742 (t table)
    assert c["test"] == "paired t" and c["df"] == 2
    assert c["difference"] == pytest.approx(-2.0)
    assert c["p"] == pytest.approx(0.07418, abs=1e-4)
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) × se
    assert c["ci95"] == pytest.approx([-2.0 - half, -2.0 + half])


def test_unequal_seed_sets_fall_back_to_welch(tmp_path):
    for seed, v in [(1, 1.0), (2, 2.0), (3, 3.0)]:
        job(tmp_path, f"a{seed}", [f"seed={seed}", "lr=a"], results={"x": v})
    for seed, v in [(4, 2.0), (5, 4.0), (6, 6.0)]:
        job(tmp_path, f"b{seed}", [f"seed={seed}", "lr=b"], results={"x": v})
    (c,) = report.build(tmp_path, metrics=["results/x"]).comparisons()
    # means 2 and 4, variances 1 and 4: se = √(1/3 + 4/3), Satterthwaite df = (5/3)² / ((1/3)²/2 + (4/3)²/2) = 2.941
    assert c["test"] == "Welch t" and c["df"] == pytest.approx(2.941, abs=1e-3)
    assert c["difference"] == pytest.approx(2.0)
    # t = 1.549 on 2.94 df; scipy's own Welch test (another implementation) gives the same p
    assert c["p"] == pytest.approx(stats.ttest_ind([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], equal_var=False).pvalue)


def test_where_filters_and_a_provenance_fact_can_group(tmp_path):
    for seed in (1, 2):
        job(tmp_path, f"f{seed}", [f"seed={seed}", "stage=4"], {"arithmetic": 0.9}, precision="32-true")
        job(tmp_path, f"b{seed}", [f"seed={seed}", "stage=4"], {"arithmetic": 0.8}, precision="bf16-mixed")
        job(tmp_path, f"s3-{seed}", [f"seed={seed}", "stage=3"], {"arithmetic": 0.1}, precision="32-true")
    r = report.build(tmp_path, where={"stage": "4"}, by=["precision"], metrics=["heldout/*"])
    assert [k for k in r.groups] == [("32-true",), ("bf16-mixed",)]
    assert r.summaries()["precision=bf16-mixed"]["heldout/arithmetic"]["mean"] == pytest.approx(80.0)


def test_two_runs_of_one_seed_in_a_group_is_an_error_not_an_average(tmp_path):
    job(tmp_path, "x", ["seed=1", "lr=a", "batch=1"], results={"x": 1.0})
    job(tmp_path, "y", ["seed=1", "lr=a", "batch=2"], results={"x": 2.0})
    with pytest.raises(UserError, match="seed=1"):
        report.build(tmp_path, by=["lr"], metrics=["results/x"]).summaries()


def test_training_loss_tails_are_windows_of_equal_length(tmp_path):
    job(tmp_path, "a", ["seed=1"], losses=[5.0] * 10 + [1.0, 2.0, 3.0])
    (run,) = report.build(tmp_path, metrics=["tb/*"], tail=3).runs
    assert run.metrics["tb/train/loss@tail3"] == pytest.approx(2.0) and run.metrics["tb/train/loss"] == 3.0


def test_loss_windows_are_equal_in_tokens_whatever_the_batch(tmp_path):
    job(tmp_path, "small", ["seed=1", "batch=256"], losses=[9.0] * 20 + [1.0] * 10, tokens_per_step=256)
    job(tmp_path, "large", ["seed=1", "batch=2560"], losses=[9.0, 2.0], tokens_per_step=2560)
    r = report.build(tmp_path, metrics=["tb/train/loss@window*"], window=2560)
    by_batch = {run.overrides["batch"]: run.metrics for run in r.runs}
    assert by_batch["256"]["tb/train/loss@window2560"] == pytest.approx(1.0)  # its last 10 steps: 2,560 tokens
    assert by_batch["2560"]["tb/train/loss@window2560"] == pytest.approx(2.0)  # its last step
    short = report.build(tmp_path, metrics=["tb/*"], window=10**6).runs[0].metrics
    assert not any("@window" in k for k in short)  # a run shorter than the window has no window mean


def test_first_max_and_rise_measure_a_knock_back_from_the_start(tmp_path):
    job(tmp_path, "a", ["seed=1"], losses=[2.0, 2.5, 4.0, 3.0, 1.5])
    (run,) = report.build(tmp_path, metrics=["tb/*"]).runs
    m = run.metrics
    assert (m["tb/train/loss@first"], m["tb/train/loss@max"], m["tb/train/loss@rise"]) == (2.0, 4.0, 2.0)


def test_cli_writes_table_figure_and_every_per_run_value(sweep, capsys):
    report.main([str(sweep), "--metric", "heldout/*", "--baseline", "scheduler=cosine"])
    out = sweep / "report"
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| scheduler=wsd | 60.0 ± 10.0 (3) |" in md and "paired t" in md
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["runs"]) == 6 and saved["no_metrics"] == [str(sweep / "crashed")]
    seed2 = sorted(r["values"]["heldout/arithmetic"] for r in saved["runs"] if r["seed"] == "2")
    assert seed2 == pytest.approx([60.0, 62.0])
    assert all(r["provenance"]["commit"] == "not recorded" for r in saved["runs"])
    # a second report over the same directory does not read the first one's files as runs
    report.main([str(sweep), "--metric", "heldout/*"])
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{root}/missing"], "is not a directory"),
        (["{root}", "--metric", "nope/*"], "no metric matches nope/*"),
        (["{root}", "--baseline", "scheduler=linear"], "no such group"),
        (["{root}", "--baseline", "lr"], "expected KEY=VALUE"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(sweep, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([a.format(root=sweep) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_compare_limits_the_comparisons_to_the_named_metrics(sweep):
    r = report.build(sweep, metrics=["heldout/*"], compare_only=["heldout/arith*"])
    assert {c["metric"] for c in r.comparisons()} == {"heldout/arithmetic"}
    with pytest.raises(UserError, match="--compare nope matches none"):
        report.build(sweep, metrics=["heldout/*"], compare_only=["nope"])


def test_a_metric_named_exactly_keeps_its_brackets(tmp_path):
    job(tmp_path, "a", ["seed=1"], {"arithmetic": 0.5, "arithmetic[+]": 0.9})
    assert report.build(tmp_path, metrics=["heldout/arithmetic[+]"]).metrics == ["heldout/arithmetic[+]"]


def test_groups_sort_numbers_by_value_and_names_by_their_digits(tmp_path):
    for i, (lr, width) in enumerate([("0.01", "w64"), ("0.005", "w128"), ("0.00125", "w64"), ("0.005", "w64")]):
        job(tmp_path, f"j{i}", ["seed=1", f"optim.lr={lr}", f"+arm/x_width={width}"], results={"x": 1.0})
    r = report.build(tmp_path, by=["arm/x_width", "optim.lr"], metrics=["results/x"])
    assert list(r.groups) == [("w64", "0.00125"), ("w64", "0.005"), ("w64", "0.01"), ("w128", "0.005")]


def test_compare_with_no_metric_compares_nothing(sweep, capsys):
    assert report.build(sweep, metrics=["heldout/*"], compare_only=[]).comparisons() == []
    report.main([str(sweep), "--metric", "heldout/*", "--compare"])
    assert "Against the baseline" not in (sweep / "report" / "report.md").read_text()

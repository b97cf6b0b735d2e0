import json
import re

from minimath import provenance
from minimath.training import run

from conftest import TINY_TRAIN_OVERRIDES, compose_config


def test_git_commit_names_this_checkouts_head():
    facts = provenance.git_commit()
    assert re.fullmatch(r"[0-9a-f]{40}", facts["commit"]) and isinstance(facts["dirty"], bool)


def test_git_commit_outside_a_checkout_is_unknown(tmp_path):
    assert provenance.git_commit(tmp_path) == {"commit": "unknown", "dirty": None}


def test_summary_agrees_says_mixed_or_not_recorded():
    a = {
        "commit": "c1",
        "dirty": False,
        "precision": "32-true",
        "cpu": "X",
        "amx": False,
        "avx512_bf16": True,
        "torch": "2.13.0",
        "threads": 2,
    }
    assert provenance.summary([a, dict(a)]) == a
    mixed = provenance.summary([a, {**a, "precision": "bf16-mixed"}])
    assert mixed["precision"] == 'mixed: "32-true", "bf16-mixed"' and mixed["cpu"] == "X"
    assert set(provenance.summary([]).values()) == {"not recorded"}


def test_a_training_session_records_commit_precision_and_machine(tmp_path, data_root):
    out = tmp_path / "run"
    run(compose_config(TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}", "hardware.precision=32-true"], out))
    (session,) = json.loads((out / provenance.PROVENANCE).read_text())["sessions"]
    assert session["precision"] == "32-true" and session["precision_reason"]
    assert session["commit"] == provenance.git_commit()["commit"]
    assert {"cpu", "amx", "avx512_bf16", "torch", "threads", "started"} <= set(session)
    # the same command again finds the stage finished: it trains nothing and records no session
    run(compose_config(TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}", "hardware.precision=32-true"], out))
    assert len(provenance.read(out)) == 1

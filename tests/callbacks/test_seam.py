"""The seam between the LightningModule and the callbacks: the module offers what `TrainingState` declares, and the
callbacks read nothing else from it."""

import ast
from pathlib import Path

from test_lit_module import make_module

import minimath.callbacks
from minimath.callbacks import TrainingState


def test_the_module_offers_what_callbacks_may_read(tiny_model_config):
    module = make_module(tiny_model_config)
    assert isinstance(module, TrainingState)
    names = {probe.name for probe in module.probes(logit_positions=8)}
    assert "layer1/max_attn_logit" in names and "logit_rms" in names
    assert len(module.layer_parameters()) == tiny_model_config.n_layer


def test_callbacks_read_only_what_the_seam_declares():
    declared = set(TrainingState.__annotations__) | {
        name for name, value in vars(TrainingState).items() if callable(value) and not name.startswith("_")
    }
    read = set()
    for path in Path(minimath.callbacks.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pl_module":
                read.add((path.name, node.attr))
    assert read and {attr for _, attr in read} <= declared, sorted(r for r in read if r[1] not in declared)

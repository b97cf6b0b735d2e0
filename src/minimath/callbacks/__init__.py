"""What runs beside the training step (each configured in conf/callbacks), one callback per module: the metrics
logged against tokens seen (`metrics`), step checkpoints with a graceful interrupt (`checkpointing`), progress
(`progress`) and the stability monitors (`stability`). The LightningModule trains; these measure, save and
report, reading the module only through `seam.TrainingState`."""

from minimath.callbacks.checkpointing import Checkpointing
from minimath.callbacks.metrics import TrainingMetrics
from minimath.callbacks.progress import Progress
from minimath.callbacks.seam import TrainingState
from minimath.callbacks.stability import StabilityMonitor

__all__ = ["Checkpointing", "Progress", "StabilityMonitor", "TrainingMetrics", "TrainingState"]

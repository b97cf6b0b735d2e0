"""Learning-rate schedules, keyed by tokens: callables from the tokens a stage has trained so far to a multiplier of
the base LR. The run passes `total_tokens` (the stage's training tokens) and `tokens_per_step` (its batch) to every
schedule; the LightningModule evaluates it at the stage's tokens (`tokens_seen − stage_start_tokens`, saved in
checkpoints), so a schedule stays right across a resume with another batch size and never depends on how many
optimizer steps the tokens took. The multiplier of the step that starts after `t` tokens counts its own tokens
(`t + tokens_per_step`), so with a constant batch a warmup of W steps rises (k+1)/W at step k, as step-based ones.

- `Constant` — the report: the base LR everywhere.
- `WSD` — warmup → stable → decay over the stage's last `decay_fraction` of tokens (or `decay_tokens`) to
  `final_ratio`, in one of three shapes: `exp` (MiniCPM: 0.5^(t/T_half), here r^x with x the fraction of the decay
  done, i.e. T_half = decay · ln 2 / ln(1/r)), `linear`, or `sqrt` (1 − √x: YuLan-Mini). The embedded default is
  WSD with a 20-step warmup and a linear decay over the last 25% (`conf/scheduler/warmup.yaml`).
  A **decay branch** (`branch_from=PATH scheduler.decay_tokens=N`, `minimath.start`) starts from a stable-phase
  checkpoint (its weights, AdamW moments and data position) and trains N tokens of decay alone: the run gives the
  schedule `total_tokens=N` and no warmup. The point of WSD: one long stable run, cheap decays from anywhere in it.
- `Cosine` — warmup, then a half cosine from the base LR to `final_ratio` over the rest of the stage.
"""

from __future__ import annotations

import math

SHAPES = ("exp", "linear", "sqrt")


class Schedule:
    """Warmup shared by every schedule: `warmup_steps` (converted with the batch) or `warmup_tokens`."""

    def __init__(self, warmup_steps: int = 0, warmup_tokens: int = 0, total_tokens: int = 0, tokens_per_step: int = 1):
        if warmup_steps < 0 or warmup_tokens < 0 or tokens_per_step < 1:
            raise ValueError(
                f"warmup_steps, warmup_tokens >= 0 and tokens_per_step >= 1; got {warmup_steps}, "
                f"{warmup_tokens}, {tokens_per_step}"
            )
        self.tokens_per_step, self.total_tokens = int(tokens_per_step), int(total_tokens)
        self.warmup_tokens = int(warmup_tokens) or int(warmup_steps) * self.tokens_per_step

    @property
    def decay_start_tokens(self) -> int | None:
        """Stage tokens after which an end-of-stage decay's first step starts (None: no such decay); the stage's
        decay-phase mixture takes over there."""
        return None

    def after(self, tokens: int) -> int:
        """Tokens trained once the step that starts at `tokens` is done."""
        return tokens + self.tokens_per_step

    def warmup(self, tokens: int) -> float:
        return min(1.0, self.after(tokens) / self.warmup_tokens) if self.warmup_tokens else 1.0

    def __call__(self, tokens: int) -> float:
        return self.warmup(tokens)


class Constant(Schedule):
    """The report's schedule: the base LR at every step (no warmup)."""

    def __call__(self, tokens: int) -> float:
        return 1.0


class WSD(Schedule):
    """Warmup, stable at the base LR, then a decay over the stage's last tokens (rounded to whole steps)."""

    def __init__(
        self,
        warmup_steps: int = 0,
        warmup_tokens: int = 0,
        decay_fraction: float = 0.1,
        decay_tokens: int | None = None,
        shape: str = "exp",
        final_ratio: float = 0.1,
        total_tokens: int = 0,
        tokens_per_step: int = 1,
    ):
        super().__init__(warmup_steps, warmup_tokens, total_tokens, tokens_per_step)
        if not 0.0 <= decay_fraction <= 1.0 or not 0.0 <= final_ratio <= 1.0 or shape not in SHAPES:
            raise ValueError(
                f"decay_fraction and final_ratio in [0, 1], shape one of {SHAPES}; got "
                f"{decay_fraction}, {final_ratio}, {shape!r}"
            )
        if shape == "exp" and final_ratio == 0.0:
            raise ValueError("shape=exp decays geometrically: final_ratio must be above 0")
        decay = decay_tokens if decay_tokens is not None else decay_fraction * self.total_tokens
        self.decay_tokens = round(decay / self.tokens_per_step) * self.tokens_per_step
        self.shape, self.final_ratio = shape, final_ratio

    @property
    def decay_start_tokens(self) -> int | None:
        return self.total_tokens - self.decay_tokens if self.decay_tokens > 0 else None

    def decay(self, tokens: int) -> float:
        if self.decay_tokens <= 0:
            return 1.0
        x = (self.after(tokens) - (self.total_tokens - self.decay_tokens)) / self.decay_tokens
        if x <= 0:
            return 1.0
        x, r = min(1.0, x), self.final_ratio
        if self.shape == "exp":
            return r**x
        return 1.0 - (1.0 - r) * (x if self.shape == "linear" else math.sqrt(x))

    def __call__(self, tokens: int) -> float:
        return min(self.warmup(tokens), self.decay(tokens))


class Cosine(Schedule):
    """Warmup, then a half cosine from the base LR down to `final_ratio` at the stage's end."""

    def __init__(
        self,
        warmup_steps: int = 0,
        warmup_tokens: int = 0,
        final_ratio: float = 0.1,
        total_tokens: int = 0,
        tokens_per_step: int = 1,
    ):
        super().__init__(warmup_steps, warmup_tokens, total_tokens, tokens_per_step)
        if not 0.0 <= final_ratio <= 1.0:
            raise ValueError(f"final_ratio in [0, 1]; got {final_ratio}")
        self.final_ratio = final_ratio

    def __call__(self, tokens: int) -> float:
        if self.after(tokens) <= self.warmup_tokens:
            return self.warmup(tokens)
        span = max(self.total_tokens - self.warmup_tokens, 1)
        p = min(1.0, (self.after(tokens) - self.warmup_tokens) / span)
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))

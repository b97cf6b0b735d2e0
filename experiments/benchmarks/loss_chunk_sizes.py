"""Which loss chunk size runs `gpt4l256`'s whole training step fastest on this CPU? One process, one model, the
same batch (8 × 256 random tokens over Qwen's 151,936-row vocabulary), fp32: the transformer's forward, the chunked
loss with its gradients, the backward, clipping and AdamW, with the logits chunked at each size in turn,
alternating, `--rounds` times; the fastest round of each size is kept (other work on the cores only slows a round).
MFU counts all FLOPs (`minimath.flops`) against this CPU's measured fp32 matmul peak.

    python experiments/benchmarks/loss_chunk_sizes.py [--rounds 4] [--mib 128 256 512]
    python experiments/benchmarks/loss_chunk_sizes.py --profile --mib 128     # torch profile of one step instead
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.flops import flops_per_token, measured_matmul_peak
from minimath.hardware import cpu_name
from minimath.loss import chunk_positions, lm_loss
from minimath.model import ModelConfig, Transformer

VOCAB, MICRO_BATCH, SEQ = 151_936, 8, 256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--mib", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--profile", action="store_true", help="profile one step at the first --mib, ops by shape")
    args = parser.parse_args()
    preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / "gpt4l256.yaml"), resolve=True)
    config = ModelConfig.from_preset(preset, vocab_size=VOCAB, max_seq_len=SEQ)
    torch.manual_seed(0)
    model = Transformer(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    window = torch.randint(0, VOCAB, (MICRO_BATCH, SEQ + 1))

    def step(chunk_bytes: int) -> float:
        start = time.perf_counter()
        hidden = model.hidden_states(window[:, :-1])
        loss, _ = lm_loss(hidden, model.output_weight, window[:, 1:], chunk_bytes=chunk_bytes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        step(args.mib[0] * 2**20)  # warm up
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            seconds = step(args.mib[0] * 2**20)
        print(f"{cpu_name()}, fp32, {args.mib[0]} MiB chunks: one step {seconds:.2f} s")
        table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=8)
        print(table)
        return
    peak = measured_matmul_peak()
    flops = flops_per_token(config, SEQ).total * MICRO_BATCH * SEQ
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; gpt4l256 step of")
    print(f"{MICRO_BATCH} x {SEQ} tokens; measured fp32 matmul peak {peak / 1e12:.3f} TFLOP/s")
    step(args.mib[0] * 2**20)  # warm up
    best = {mib: float("inf") for mib in args.mib}
    for _ in range(args.rounds):
        for mib in args.mib:
            best[mib] = min(best[mib], step(mib * 2**20))
    for mib, seconds in best.items():
        rows = chunk_positions(mib * 2**20, VOCAB, torch.float32)
        print(f"{mib:4d} MiB chunks ({rows} positions): {seconds:.2f} s/step, total MFU {flops / seconds / peak:.1%}")


if __name__ == "__main__":
    main()

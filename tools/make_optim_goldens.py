#!/usr/bin/env python3
"""Reference goldens for the training kernels, computed with PyTorch and Hugging Face
transformers (the implementations FlagEmbedding fine-tunes with).

Run by hand (CI never runs it); its outputs are committed:

    python3 tools/make_optim_goldens.py

Needs torch, safetensors, numpy and transformers (the schedule comes from the library itself:
get_linear_schedule_with_warmup and TrainingArguments' warmup-ratio rounding; the Trainer's
accelerate dependency is not needed). Nothing is downloaded. Deterministic: fixed seeds, CPU,
single-threaded torch, so a rerun with the same library versions rewrites identical tensors
(only the order of the metadata keys in the safetensors headers may change).

Outputs (test/fixtures/optim/)
  loss.safetensors      contrastive (InfoNCE) loss: f32 inputs q, p; loss, dq, dp from
                        torch.nn.functional.cross_entropy + autograd in float64 (and the same in
                        float32 as *_f32, to show torch's own float32 error)
  adamw.safetensors     torch.optim.AdamW, 3 steps over 6 parameters of awkward sizes, with
                        and without weight decay, per-step lr and gradient scale; every
                        parameter's p, grad, exp_avg, exp_avg_sq after each step; plus a
                        clip_grad_norm_ example (clip.*)
  schedule.json         learning rates of get_linear_schedule_with_warmup under LambdaLR
  README.md is written by hand.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "optim"


def versions() -> dict[str, str]:
    import safetensors

    v = {"python": sys.version.split()[0], "torch": torch.__version__, "safetensors": safetensors.__version__, "numpy": np.__version__}
    try:
        import transformers

        v["transformers"] = transformers.__version__
    except ImportError:
        pass
    return v


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


# ---------------------------------------------------------------- contrastive loss


def infonce(q: torch.Tensor, p: torch.Tensor, group: int, temperature: float) -> torch.Tensor:
    """FlagEmbedding's BiEncoderModel.compute_loss: scores over all passages of the step,
    target of query i = passage i * group, mean cross-entropy."""
    scores = q @ p.T / temperature
    target = torch.arange(q.shape[0], dtype=torch.long) * group
    return torch.nn.functional.cross_entropy(scores, target)


def make_loss() -> None:
    Q, G, H, T = 6, 5, 37, 0.02
    g = torch.Generator().manual_seed(20240601)
    q = unit_rows(torch.randn(Q, H, generator=g))
    # positives near their query (cosine ~0.3, logit ~16 against negatives of std ~8 at T = 0.02),
    # negatives random: a loss that is neither ~0 nor ~log P, with some rows ranked wrong
    p = unit_rows(torch.randn(Q * G, H, generator=g))
    p[::G] = unit_rows(q + 3.0 * unit_rows(torch.randn(Q, H, generator=g)))
    q32, p32 = q.float().contiguous(), p.float().contiguous()
    out = {"q": q32, "p": p32}
    for suffix, dtype in (("", torch.float64), ("_f32", torch.float32)):
        qq = q32.to(dtype).clone().requires_grad_(True)
        pp = p32.to(dtype).clone().requires_grad_(True)
        loss = infonce(qq, pp, G, T)
        loss.backward()
        out[f"loss{suffix}"] = loss.detach().reshape(1)
        out[f"dq{suffix}"] = qq.grad
        out[f"dp{suffix}"] = pp.grad
    meta = {"Q": str(Q), "groupSize": str(G), "H": str(H), "temperature": repr(T), "versions": json.dumps(versions())}
    save_file(out, OUT / "loss.safetensors", metadata=meta)
    print(f"loss.safetensors: loss {out['loss'].item():.6f}, f32 vs f64 max |d dq| {(out['dq_f32'].double() - out['dq']).abs().max().item():.2e}")


# ---------------------------------------------------------------- AdamW

# name, shape, weight decay (HF Trainer convention: no decay for biases and LayerNorm weights),
# gradient scale of each step's raw gradient (tiny gradients make eps matter: with |g| ~ 1e-7,
# sqrt(v_hat) ~ 1e-7 is 10x eps, so eps outside vs inside the sqrt differ by 2x)
PARAMS = [
    ("dense.weight", (37, 29), True, 1.0),
    ("dense.bias", (37,), False, 0.3),
    ("LayerNorm.weight", (65,), False, 1e-3),
    ("LayerNorm.bias", (65,), False, 1e-7),
    ("out.weight", (3, 100), True, 1e-4),
    ("scalar", (1,), True, 2.0),
]
STEPS = [  # per step: lr (as a scheduler would set it) and the gradient scale (clipping)
    {"lr": 1e-3, "grad_scale": 1.0},
    {"lr": 3e-4, "grad_scale": 0.37},
    {"lr": 2e-3, "grad_scale": 1.0},
]
BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.1  # larger than the 0.01 of the recipe so the decay term is well above f32 rounding


def make_adamw() -> None:
    g = torch.Generator().manual_seed(20240602)
    params = {name: torch.nn.Parameter(torch.randn(*shape, generator=g) * 0.5) for name, shape, _, _ in PARAMS}
    out: dict[str, torch.Tensor] = {}
    for name, _, _, _ in PARAMS:
        out[f"{name}.p0"] = params[name].detach().clone()
    groups = [
        {"params": [params[n] for n, _, d, _ in PARAMS if d], "weight_decay": WEIGHT_DECAY},
        {"params": [params[n] for n, _, d, _ in PARAMS if not d], "weight_decay": 0.0},
    ]
    # foreach=False: the per-tensor loop, the path torch takes for CPU tensors anyway
    opt = torch.optim.AdamW(groups, lr=STEPS[0]["lr"], betas=BETAS, eps=EPS, foreach=False)
    for t, s in enumerate(STEPS, start=1):
        for group in opt.param_groups:
            group["lr"] = s["lr"]
        for name, shape, _, gs in PARAMS:
            raw = torch.randn(*shape, generator=g) * gs
            if raw.numel() > 4:
                raw.view(-1)[3] = 0.0  # an exact zero gradient: m, v decay, p moves by m_hat only
            out[f"{name}.g{t}"] = raw.clone()
            params[name].grad = raw.clone()
            params[name].grad.mul_(s["grad_scale"])  # as clip_grad_norm_ scales gradients in place
        opt.step()
        for name, _, _, _ in PARAMS:
            st = opt.state[params[name]]
            out[f"{name}.p{t}"] = params[name].detach().clone()
            out[f"{name}.m{t}"] = st["exp_avg"].clone()
            out[f"{name}.v{t}"] = st["exp_avg_sq"].clone()

    # clip_grad_norm_ over two gradients: the total norm and the clipped gradients
    c0 = torch.randn(33, 7, generator=g) * 3.0
    c1 = torch.randn(1000, generator=g) * 0.1
    w0, w1 = torch.nn.Parameter(torch.zeros(33, 7)), torch.nn.Parameter(torch.zeros(1000))
    w0.grad, w1.grad = c0.clone(), c1.clone()
    max_norm = 1.0
    total = torch.nn.utils.clip_grad_norm_([w0, w1], max_norm)
    out.update({"clip.g0": c0, "clip.g1": c1, "clip.total_norm": total.reshape(1), "clip.g0_clipped": w0.grad, "clip.g1_clipped": w1.grad})

    meta = {
        "params": json.dumps([{"name": n, "shape": list(s), "decay": d} for n, s, d, _ in PARAMS]),
        "steps": json.dumps(STEPS),
        "beta1": repr(BETAS[0]),
        "beta2": repr(BETAS[1]),
        "eps": repr(EPS),
        "weight_decay": repr(WEIGHT_DECAY),
        "clip_max_norm": repr(max_norm),
        "versions": json.dumps(versions()),
    }
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "adamw.safetensors", metadata=meta)
    print(f"adamw.safetensors: {len(out)} tensors, clip total norm {total.item():.6f}")


# ---------------------------------------------------------------- learning-rate schedule


def make_schedule() -> None:
    from transformers import TrainingArguments, get_linear_schedule_with_warmup

    cases = [
        {"lr": 1e-5, "totalSteps": 100, "warmupRatio": 0.1},
        {"lr": 1e-5, "totalSteps": 30, "warmupRatio": 0.1},  # 30 * 0.1 = 3.0000000000000004: ceil -> 4
        {"lr": 2e-4, "totalSteps": 17, "warmupSteps": 5},
        {"lr": 1e-3, "totalSteps": 12, "warmupSteps": 0},
        {"lr": 1e-3, "totalSteps": 5, "warmupSteps": 5},  # warmup is the whole run
        {"lr": 3e-5, "totalSteps": 1, "warmupRatio": 0.1},
        {"lr": 5e-5, "totalSteps": 7, "warmupSteps": 9},  # warmup longer than the run
    ]
    for c in cases:
        if "warmupRatio" in c:
            # transformers >= 5 takes a ratio as warmup_steps < 1; both it and the older
            # warmup_ratio round with math.ceil(num_training_steps * ratio)
            warmup = TrainingArguments.get_warmup_steps(SimpleNamespace(warmup_steps=c["warmupRatio"]), c["totalSteps"])
            assert warmup == math.ceil(c["totalSteps"] * c["warmupRatio"])
        else:
            warmup = c["warmupSteps"]
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=c["lr"])
        sched = get_linear_schedule_with_warmup(opt, warmup, c["totalSteps"])
        lrs = []
        # the lr of optimizer step k (0-based) is the one set before it; Trainer steps the
        # scheduler after each optimizer step. Two steps past the end show the floor at 0.
        for _ in range(c["totalSteps"] + 2):
            lrs.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        c["resolvedWarmupSteps"] = warmup
        c["lrs"] = lrs
    doc = {"about": "lr at optimizer step k (0-based) under LambdaLR(get_linear_schedule_with_warmup)", "versions": versions(), "cases": cases}
    (OUT / "schedule.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"schedule.json: {len(cases)} schedules")


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    make_loss()
    make_adamw()
    make_schedule()


if __name__ == "__main__":
    main()

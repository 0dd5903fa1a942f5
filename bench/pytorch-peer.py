#!/usr/bin/python3
"""The PyTorch peer of scripts/bench: the same network as a NeuroLens model file (architecture
and classes from its safetensors metadata, weights from its tensors), on Debian's PyTorch (CPU).

    bench/pytorch-peer.py MODEL INPUT.f32 [--runs N] [--train-steps N] [--batch N]

INPUT.f32 is one preprocessed input, float32 NHWC (as NeuroLens takes it). Prints JSON:
inference (batch 1, eval mode, 1 and 2 threads: median ms and the thread count PyTorch reports),
the probabilities and logits for INPUT, and training (batch N, 2 threads, AdamW, cross-entropy,
train mode with batch-norm statistics and dropout as NeuroLens trains): images per second.
"""
import argparse
import json
import statistics
import struct
import time

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    types = {"F32": np.float32, "F16": np.float16}
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype=types[t["dtype"]]).astype(np.float32).reshape(t["shape"])
    return json.loads(meta["architecture"]), json.loads(meta["classes"]), tensors


class Network(nn.Module):
    """NeuroLens' layer graph: each layer reads its named inputs (default: the previous layer)."""

    def __init__(self, arch, tensors):
        super().__init__()
        self.arch = arch
        self.mods = nn.ModuleDict()
        channels = {"input": arch["input"]["channels"]}
        previous = "input"
        for l in arch["layers"]:
            inputs = l.get("inputs") or [previous]
            c = channels[inputs[0]]
            name, t = l["name"], l["type"]
            w = lambda p: torch.from_numpy(tensors[f"{name}.{p}"].copy())
            if t == "conv2d":
                m = nn.Conv2d(c, l["filters"], l["kernel"], l.get("stride", 1), l.get("padding", 0), bias=l.get("bias", True))
                m.weight.data = w("weight").permute(0, 3, 1, 2).contiguous()  # OHWI -> OIHW
                if l.get("bias", True):
                    m.bias.data = w("bias")
                c = l["filters"]
            elif t == "batch_norm":
                m = nn.BatchNorm2d(c, eps=l.get("epsilon", 1e-5), momentum=l.get("momentum", 0.1))
                m.weight.data, m.bias.data = w("gamma"), w("beta")
                m.running_mean.data, m.running_var.data = w("running_mean"), w("running_var")
            elif t == "dense":
                weight = w("weight")
                m = nn.Linear(weight.shape[1], l["units"], bias=l.get("bias", True))
                m.weight.data = weight
                if l.get("bias", True):
                    m.bias.data = w("bias")
                c = l["units"]
            elif t == "max_pool":
                m = nn.MaxPool2d(l["kernel"], l.get("stride", 1), l.get("padding", 0))
            elif t == "avg_pool":
                m = nn.AvgPool2d(l["kernel"], l.get("stride", 1), l.get("padding", 0), count_include_pad=False)
            elif t == "dropout":
                m = nn.Dropout(l.get("rate", 0.0))
            elif t in ("relu", "add", "global_avg_pool", "softmax", "flip"):
                m = nn.Identity()
            else:
                raise SystemExit(f"layer type {t} is not mapped")
            self.mods[name] = m
            channels[name] = c
            previous = name

    def forward(self, x):
        out = {"input": x}
        previous = "input"
        logits = None
        for l in self.arch["layers"]:
            name, t = l["name"], l["type"]
            xs = [out[i] for i in (l.get("inputs") or [previous])]
            m = self.mods[name]
            if t == "add":
                y = xs[0] + xs[1]
            elif t == "relu":
                y = torch.relu(xs[0])
            elif t == "global_avg_pool":
                y = xs[0].mean(dim=(2, 3))
            elif t == "flip":  # the mirror image (left-right), as NeuroLens' flip layer
                y = torch.flip(xs[0], dims=[3])
            elif t == "dense":
                v = xs[0]
                if v.dim() == 4:  # NeuroLens flattens NHWC
                    v = v.permute(0, 2, 3, 1).flatten(1)
                y = m(v)
            elif t == "softmax":
                logits = xs[0]
                y = torch.softmax(xs[0], dim=1)
            else:
                y = m(xs[0])
            if l.get("activation") == "relu":
                y = torch.relu(y)
            out[name] = y
            previous = name
        return logits if logits is not None else out[previous]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()

    arch, classes, tensors = read_safetensors(a.model)
    h, w, c = arch["input"]["height"], arch["input"]["width"], arch["input"]["channels"]
    x = torch.from_numpy(np.fromfile(a.input, dtype=np.float32).reshape(1, h, w, c).transpose(0, 3, 1, 2).copy())
    net = Network(arch, tensors)
    # What PyTorch says about its build and CPU path (1.13 has no torch.backends.cpu yet).
    config = torch.__config__.show()
    capability = next((line.split(":", 1)[1].strip() for line in config.splitlines() if "CPU capability usage" in line), "unknown")
    result = {"version": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
              "cpu_capability": capability, "inference": {}}

    net.eval()
    with torch.inference_mode():
        logits = net(x)
        result["logits"] = logits[0].tolist()
        result["probabilities"] = torch.softmax(logits, dim=1)[0].tolist()
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for _ in range(a.warmup):
                net(x)
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t0) * 1000)
            result["inference"][f"{threads}t"] = {"median_ms": statistics.median(times), "threads": torch.get_num_threads()}

    torch.set_num_threads(2)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    xb = torch.randn(a.batch, c, h, w, generator=g)
    yb = torch.randint(0, len(classes), (a.batch,), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(a.train_steps):
        step()
    seconds = time.perf_counter() - t0
    result["train"] = {"batch": a.batch, "threads": torch.get_num_threads(), "steps": a.train_steps,
                       "images_per_s": a.batch * a.train_steps / seconds}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

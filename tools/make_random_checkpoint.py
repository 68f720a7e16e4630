#!/usr/bin/env python3
"""Writes a random RWKV checkpoint in the official .pth layout at a released shape, for
measuring load time and memory of real files (developer tool; needs PyTorch).

    python3 tools/make_random_checkpoint.py --layers 24 --embd 2048 --ffn 7168 --vocab 65536 \
        --version x060 --dtype bf16 --out /tmp/finch-1b6-random.pth
"""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--embd", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=7168)
    ap.add_argument("--vocab", type=int, default=65536)
    ap.add_argument("--head-size", type=int, default=64)
    ap.add_argument("--version", choices=["x052", "x060"], default="x060")
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    C, F, V, L, N = a.embd, a.ffn, a.vocab, a.layers, a.head_size
    H = C // N
    g = torch.Generator().manual_seed(1)

    def rnd(*shape, scale=0.02):
        return (torch.randn(*shape, generator=g) * scale).to(dt)

    sd = {"emb.weight": rnd(V, C, scale=0.5), "blocks.0.ln0.weight": torch.ones(C, dtype=dt),
          "blocks.0.ln0.bias": torch.zeros(C, dtype=dt)}
    for l in range(L):
        p = f"blocks.{l}."
        for ln in ("ln1", "ln2"):
            sd[p + ln + ".weight"] = torch.ones(C, dtype=dt)
            sd[p + ln + ".bias"] = torch.zeros(C, dtype=dt)
        for m in ("receptance", "key", "value", "gate"):
            sd[p + f"att.{m}.weight"] = rnd(C, C)
        sd[p + "att.output.weight"] = rnd(C, C)
        sd[p + "att.ln_x.weight"] = torch.ones(C, dtype=dt)
        sd[p + "att.ln_x.bias"] = torch.zeros(C, dtype=dt)
        sd[p + "att.time_faaaa"] = rnd(H, N, scale=0.5)
        if a.version == "x060":
            for s in ("x", "w", "k", "v", "r", "g"):
                sd[p + f"att.time_maa_{s}"] = torch.rand(1, 1, C, generator=g).to(dt)
            sd[p + "att.time_maa_w1"] = rnd(C, 5 * 32, scale=0.01)
            sd[p + "att.time_maa_w2"] = rnd(5, 32, C, scale=0.01)
            sd[p + "att.time_decay"] = (torch.rand(1, 1, C, generator=g) * 5 - 6).to(dt)
            sd[p + "att.time_decay_w1"] = rnd(C, 64, scale=0.01)
            sd[p + "att.time_decay_w2"] = rnd(64, C, scale=0.01)
            sd[p + "ffn.time_maa_k"] = torch.rand(1, 1, C, generator=g).to(dt)
            sd[p + "ffn.time_maa_r"] = torch.rand(1, 1, C, generator=g).to(dt)
        else:
            for s in ("k", "v", "r", "g"):
                sd[p + f"att.time_mix_{s}"] = torch.rand(1, 1, C, generator=g).to(dt)
            sd[p + "att.time_decay"] = (torch.rand(H, N, generator=g) * 5 - 6).to(dt)
            sd[p + "ffn.time_mix_k"] = torch.rand(1, 1, C, generator=g).to(dt)
            sd[p + "ffn.time_mix_r"] = torch.rand(1, 1, C, generator=g).to(dt)
        sd[p + "ffn.key.weight"] = rnd(F, C)
        sd[p + "ffn.receptance.weight"] = rnd(C, C)
        sd[p + "ffn.value.weight"] = rnd(C, F)
    sd["ln_out.weight"] = torch.ones(C, dtype=dt)
    sd["ln_out.bias"] = torch.zeros(C, dtype=dt)
    sd["head.weight"] = rnd(V, C)
    torch.save(sd, a.out)
    n = sum(t.numel() for t in sd.values())
    print(f"{a.out}: {n / 1e9:.3f} B parameters, {sum(t.numel() * t.element_size() for t in sd.values()) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

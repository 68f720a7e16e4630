#!/usr/bin/env python3
"""Check a demo checkpoint made by tools/train_demo_model.py against the OFFICIAL RWKV code.

Developer tool only. Needs the `rwkv` pip package (BlinkDL's ChatRWKV model.py) and PyTorch
(see tools/requirements-dev.txt). What it checks:

1. The file is what official releases look like: a plain dict name -> tensor, every tensor
   bfloat16 and contiguous, the x060 key set with the official shapes, at most 4 MB.
2. The official `rwkv.model.RWKV(model, strategy='cpu fp32')` (RWKV_JIT_ON=0, RWKV_CUDA_ON=0)
   loads it and detects version 6.0.
3. Logits of the official implementation equal those of the training model
   (tools/train_demo_model.py, fp32 from the same bf16 values), in sequence mode (full output)
   and in token-by-token mode, on text A of the fixtures and on held-out fortunes:
   a. the official code fed an fp32 copy of the bf16 values ("upcast first") vs the training
      model in plain fp32;
   b. the official code fed the bf16 file itself vs the training model with the embedding
      pre-normalised the way model.py does it for a bf16 file (LayerNorm(emb; ln0) evaluated
      on the bf16 tensors and rounded to bf16; see ../shared/fixtures/random/README.md).
   Both must agree to --tol (default 1e-4) absolute on every logit.
4. The official model's loss on held-out fortunes, and a greedy and a sampled continuation
   (official PIPELINE.sample_logits) of a prompt, printed for the README.

Usage:
  python3 tools/check_demo_model.py examples/models/demo-x060-L4-D128-fortunes.pth
"""

import argparse
import json
import os
import sys
import tempfile

os.environ["RWKV_JIT_ON"] = "0"
os.environ["RWKV_CUDA_ON"] = "0"

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_demo_model as tdm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT_A = os.path.join(HERE, "..", "..", "shared", "fixtures", "tiny", "textA.txt")
TEXT_A_FALLBACK = (b"The old lighthouse keeper climbed the stairs each evening to light the lamp. "
                   b"Ships passed safely, and the village slept in peace")


def expected_shapes(cfg):
    V, C, A, N, Fd = cfg["vocab_size"], cfg["n_embd"], cfg["dim_att"], cfg["head_size"], cfg["dim_ffn"]
    Dm, Dw, H = cfg["dim_mix_lora"], cfg["dim_decay_lora"], A // N
    s = {"emb.weight": (V, C), "blocks.0.ln0.weight": (C,), "blocks.0.ln0.bias": (C,),
         "ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (V, C)}
    for i in range(cfg["n_layer"]):
        b = f"blocks.{i}."
        for n in ("ln1", "ln2"):
            s[b + n + ".weight"] = (C,)
            s[b + n + ".bias"] = (C,)
        for n in "xwkvrg":
            s[b + "att.time_maa_" + n] = (1, 1, C)
        s[b + "att.time_maa_w1"] = (C, 5 * Dm)
        s[b + "att.time_maa_w2"] = (5, Dm, C)
        s[b + "att.time_decay"] = (1, 1, A)
        s[b + "att.time_decay_w1"] = (C, Dw)
        s[b + "att.time_decay_w2"] = (Dw, A)
        s[b + "att.time_faaaa"] = (H, N)
        for n in ("receptance", "key", "value", "gate"):
            s[b + f"att.{n}.weight"] = (A, C)
        s[b + "att.output.weight"] = (C, A)
        s[b + "att.ln_x.weight"] = (A,)
        s[b + "att.ln_x.bias"] = (A,)
        s[b + "ffn.time_maa_k"] = (1, 1, C)
        s[b + "ffn.time_maa_r"] = (1, 1, C)
        s[b + "ffn.key.weight"] = (Fd, C)
        s[b + "ffn.receptance.weight"] = (C, C)
        s[b + "ffn.value.weight"] = (C, Fd)
    return s


def official_logits(model, tokens):
    """(sequence mode full output [T,V], token-by-token [T,V], final seq state)."""
    seq, st = model.forward(tokens, None, full_output=True)
    rows, state = [], None
    for t in tokens:
        out, state = model.forward([t], state)
        rows.append(out.float().clone())
    return seq.float(), torch.stack(rows), st


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="path to the .pth")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--prompt", default="The meaning of life is")
    ap.add_argument("--gen-bytes", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.85)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--val-bytes", type=int, default=4096, help="held-out bytes for the loss check")
    ap.add_argument("--corpus-seed", type=int, default=20240601, help="--seed of the training run")
    ap.add_argument("--val-fraction", type=float, default=0.05)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from rwkv.model import RWKV
    from rwkv.utils import PIPELINE

    ok = True
    result = {}

    # ---- 1. file layout ------------------------------------------------------------------
    size = os.path.getsize(args.model)
    sd = torch.load(args.model, map_location="cpu", weights_only=True)
    assert type(sd) is dict, f"not a plain dict: {type(sd)}"
    cfg = tdm.config_from_state_dict(sd)
    exp = expected_shapes(cfg)
    bad = [k for k in sd if k not in exp] + [k for k in exp if k not in sd]
    bad += [k for k in sd if k in exp and tuple(sd[k].shape) != exp[k]]
    bad += [k for k in sd if sd[k].dtype != torch.bfloat16 or not sd[k].is_contiguous()]
    n_params = sum(v.numel() for v in sd.values())
    print(f"file: {args.model}  {size} bytes  {len(sd)} tensors  {n_params} parameters")
    print(f"config from shapes: {json.dumps(cfg)}")
    if bad:
        print(f"FAIL layout: {bad[:10]}")
        ok = False
    if size > 4 * 1024 * 1024:
        print(f"FAIL size {size} > 4 MiB")
        ok = False
    result.update(file_bytes=size, parameters=n_params, config=cfg, layout_ok=not bad)

    # ---- texts -----------------------------------------------------------------------------
    text_a = open(TEXT_A, "rb").read() if os.path.exists(TEXT_A) else TEXT_A_FALLBACK
    _, _, _, val = tdm.build_corpus(args.corpus_seed, args.val_fraction)
    held_out = val[:args.val_bytes]
    texts = {"textA": text_a, "held-out[:384]": held_out[:384]}

    # ---- own model (fp32 from the bf16 values) ----------------------------------------------
    mine, _ = tdm.load_checkpoint(args.model)
    mine_bf16emb, _ = tdm.load_checkpoint(args.model)
    with torch.no_grad():
        C = cfg["n_embd"]
        e = F.layer_norm(sd["emb.weight"], (C,), weight=sd["blocks.0.ln0.weight"],
                         bias=sd["blocks.0.ln0.bias"])
        if e.dtype != torch.bfloat16:  # model.py falls back to fp32 when bf16 LN is unsupported
            e = e.float()
        mine_bf16emb.emb.weight.copy_(e.float())
        mine_bf16emb.blocks[0].ln0 = nn.Identity()

    def own(m, data, wkv):
        with torch.no_grad():
            return m(torch.tensor([list(data)]), wkv=wkv)[0]

    # ---- 2./3. official ---------------------------------------------------------------------
    stem = args.model[:-4] if args.model.endswith(".pth") else args.model
    with tempfile.TemporaryDirectory() as tmp:
        up = os.path.join(tmp, "upcast.pth")
        torch.save({k: v.float() for k, v in sd.items()}, up)
        official = {
            "upcast-first": (RWKV(model=up[:-4], strategy="cpu fp32", verbose=False), mine),
            "bf16 file": (RWKV(model=stem, strategy="cpu fp32"), mine_bf16emb),
        }
    for name, (om, _) in official.items():
        print(f"official model.py ({name}): version {float(om.version):.1f}, n_layer {om.args.n_layer}, "
              f"n_embd {om.args.n_embd}, n_head {om.args.n_head}")
        if om.version != 6.0:
            print(f"FAIL: official version {om.version} != 6.0")
            ok = False
    result["official_version"] = official["bf16 file"][0].version

    diffs = {}
    for name, (om, m) in official.items():
        for tname, data in texts.items():
            toks = list(data)
            seq, step, _ = official_logits(om, toks)
            a_seq = own(m, data, "sequential")
            a_chk = own(m, data, "chunked")
            d = {
                "official seq vs own loop": (seq - a_seq).abs().max().item(),
                "official step vs own loop": (step - a_seq).abs().max().item(),
                "official seq vs own chunked": (seq - a_chk).abs().max().item(),
            }
            for k, v in d.items():
                key = f"{name} | {tname} | {k}"
                diffs[key] = v
                flag = "ok" if v <= args.tol else "FAIL"
                if v > args.tol:
                    ok = False
                print(f"  {flag:4s} max|dlogit| {v:.2e}  {key}   (max|logit| {seq.abs().max().item():.1f})")
    result["max_abs_logit_diff"] = diffs

    # ---- 4. loss and generation with the official model (bf16 file as released) -------------
    om = official["bf16 file"][0]
    toks = list(held_out)
    logits, _ = om.forward(toks, None, full_output=True)
    nll = F.cross_entropy(logits[:-1].float(), torch.tensor(toks[1:])).item()
    print(f"official model.py NLL on {len(toks)} held-out bytes: {nll:.4f} nats/byte")
    result["official_heldout_nll"] = round(nll, 4)

    pipeline = PIPELINE(om, "rwkv_vocab_v20230424")  # only its sample_logits is used

    def generate(prompt, n, temperature, top_p, seed):
        np.random.seed(seed)
        out, state = om.forward(list(prompt.encode("utf-8")), None)
        got = []
        for _ in range(n):
            if temperature == 0:
                tok = int(torch.argmax(out).item())
            else:
                tok = pipeline.sample_logits(out, temperature=temperature, top_p=top_p)
            got.append(tok)
            out, state = om.forward([tok], state)
        return bytes(got).decode("utf-8", errors="replace")

    greedy = generate(args.prompt, 120, 0, 0, args.seed)
    sampled = generate(args.prompt, args.gen_bytes, args.temperature, args.top_p, args.seed)
    print(f"\n--- official greedy continuation of {args.prompt!r}:\n{args.prompt}{greedy}")
    print(f"\n--- official sampled (temperature {args.temperature}, top_p {args.top_p}, "
          f"numpy seed {args.seed}) continuation of {args.prompt!r}:\n{args.prompt}{sampled}")
    result.update(prompt=args.prompt, greedy=greedy, sampled=sampled)

    print("\nRESULT " + json.dumps(result))
    print("CHECK PASSED" if ok else "CHECK FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train the small byte-level RWKV-6 "Finch" (x060) demo model shipped in examples/models/.

Developer tool only: nothing in the library needs it, PyTorch or Python to build or run.

The model is written from the specification (sections 1-4, appendix B; see docs/spec.md):
  x = LN(emb[token]; ln0)
  per block: x += TimeMix(LN(x; ln1)); x += ChannelMix(LN(x; ln2))
  logits = head . LN(x; ln_out)
with the x060 data-dependent token shift (5-slot LoRA, slot order w,k,v,r,g), the
data-dependent decay w = exp(-exp(time_decay + tanh(zw.Wdec1).Wdec2)), the WKV recurrence
with the bonus u = time_faaaa used raw, GroupNorm ln_x with eps 64e-5 per head, a silu gate
and the relu^2 / sigmoid ChannelMix. LayerNorm eps is 1e-5 everywhere.

Tokens are bytes (vocab 256, token id = byte value). The training text is the English fortune
cookie collection of Debian's `fortunes` and `fortunes-min` packages (BSD licence, see
/usr/share/doc/fortunes/copyright), with the `%` separator lines removed and every fortune
followed by a blank line.

The checkpoint is written in the official layout: torch.save of a plain dict name -> tensor,
every tensor bfloat16 and contiguous, names and shapes as BlinkDL's RWKV-LM x060 state_dict
(time_maa_x [1,1,C], time_faaaa [H,N], time_decay [1,1,A], time_maa_w1 [C,5*Dm],
time_maa_w2 [5,Dm,C], time_decay_w1 [C,Dw], time_decay_w2 [Dw,A], Linear weights [out,in]).

Example (the command that made examples/models/demo-x060-L4-D128-fortunes.pth; see the README
there):
  apt-get install -y fortunes fortunes-min
  nice -n 10 python3 tools/train_demo_model.py --out examples/models/demo-x060-L4-D128-fortunes.pth
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FORTUNE_DIR = "/usr/share/games/fortunes"
# Picture files are not prose; everything else in the two packages is English text.
FORTUNE_SKIP = {"ascii-art"}


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------

def read_fortunes(directory=FORTUNE_DIR):
    """Return the list of fortunes (bytes, each without the '%' separator lines)."""
    if not os.path.isdir(directory):
        sys.exit(f"error: {directory} not found; run 'apt-get install -y fortunes fortunes-min'")
    names = sorted(n for n in os.listdir(directory)
                   if "." not in n and n not in FORTUNE_SKIP
                   and os.path.isfile(os.path.join(directory, n))
                   and not os.path.islink(os.path.join(directory, n)))
    fortunes = []
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        cur = []
        for line in data.split(b"\n"):
            if line.strip() == b"%":
                if cur:
                    fortunes.append(cur)
                cur = []
            else:
                cur.append(line.rstrip())
        if cur:
            fortunes.append(cur)
    out = []
    for lines in fortunes:
        while lines and not lines[0]:
            lines = lines[1:]
        while lines and not lines[-1]:
            lines = lines[:-1]
        if lines:
            out.append(b"\n".join(lines) + b"\n\n")
    return names, out


def build_corpus(seed, val_fraction):
    names, fortunes = read_fortunes()
    rng = random.Random(seed)
    order = list(range(len(fortunes)))
    rng.shuffle(order)
    n_val = max(1, int(len(fortunes) * val_fraction))
    val = b"".join(fortunes[i] for i in order[:n_val])
    train = b"".join(fortunes[i] for i in order[n_val:])
    return names, len(fortunes), train, val


# --------------------------------------------------------------------------------------------
# Model (x060), parameter names = official names
# --------------------------------------------------------------------------------------------

def wkv_sequential(r, k, v, lam, u, state=None):
    """Reference WKV (spec 4.5), one token at a time.

    r, k, v, lam: [B, T, H, N]; lam = log w = -exp(omega) (<= 0); u: [H, N].
    state: [B, H, N(key i), N(value j)] or None. Returns y [B, T, H, N] and the final state.
    """
    B, T, H, N = r.shape
    S = torch.zeros(B, H, N, N, dtype=r.dtype) if state is None else state
    w = torch.exp(lam)
    ys = []
    for t in range(T):
        kv = k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)                   # [B,H,N,N]
        y = torch.einsum("bhi,bhij->bhj", r[:, t], S + u.unsqueeze(-1) * kv)
        S = w[:, t].unsqueeze(-1) * S + kv
        ys.append(y)
    return torch.stack(ys, dim=1), S


def wkv_chunked(r, k, v, lam, u, chunk=16, state=None):
    """Chunked WKV (spec 5.4 with pair-wise exponents inside a chunk), differentiable.

    Same interface and result as wkv_sequential. All exponents are <= 0 (spec 5.5).
    """
    B, T, H, N = r.shape
    Q = chunk
    pad = (-T) % Q
    if pad:
        # Padding at the END only: it cannot influence earlier outputs (causal); the padded
        # steps are dropped and the returned state is only valid without padding.
        z = lambda x: F.pad(x, (0, 0, 0, 0, 0, pad))
        r, k, v, lam = z(r), z(k), z(v), z(lam)
    Tp = T + pad
    nc = Tp // Q
    # [B, H, nc, Q, N]
    rs = r.view(B, nc, Q, H, N).permute(0, 3, 1, 2, 4)
    ks = k.view(B, nc, Q, H, N).permute(0, 3, 1, 2, 4)
    vs = v.view(B, nc, Q, H, N).permute(0, 3, 1, 2, 4)
    ls = lam.view(B, nc, Q, H, N).permute(0, 3, 1, 2, 4)
    Lc = torch.cumsum(ls, dim=3)              # inclusive  Lambda_a
    Ec = Lc - ls                              # exclusive  E_a
    G = Lc[:, :, :, -1:, :]                   # total      [B,H,nc,1,N]

    # intra-chunk: A[a][b] = sum_i r_a k_b exp(E_a - Lambda_b) for b < a, bonus on the diagonal
    idx = torch.arange(Q)
    strict = (idx.view(Q, 1) > idx.view(1, Q)).view(1, 1, 1, Q, Q, 1)
    D = Ec.unsqueeze(4) - Lc.unsqueeze(3)     # [B,H,nc,Q(a),Q(b),N]
    D = torch.where(strict, D, torch.full_like(D, -float("inf")))
    A = (rs.unsqueeze(4) * ks.unsqueeze(3) * torch.exp(D)).sum(-1)       # [B,H,nc,Q,Q]
    diag = (rs * u.view(1, H, 1, 1, N) * ks).sum(-1)                     # [B,H,nc,Q]
    y = A @ vs + diag.unsqueeze(-1) * vs

    # inter-chunk: state entering each chunk
    Kh = ks * torch.exp(G - Lc)                                           # [B,H,nc,Q,N]
    kv = Kh.transpose(-1, -2) @ vs                                        # [B,H,nc,N,N]
    decay = torch.exp(G).squeeze(3).unsqueeze(-1)                         # [B,H,nc,N,1]
    S = torch.zeros(B, H, N, N, dtype=r.dtype) if state is None else state
    states = []
    for c in range(nc):
        states.append(S)
        S = decay[:, :, c] * S + kv[:, :, c]
    Sin = torch.stack(states, dim=2)                                      # [B,H,nc,N,N]
    y = y + (rs * torch.exp(Ec)) @ Sin
    y = y.permute(0, 2, 3, 1, 4).reshape(B, Tp, H, N)[:, :T]
    return y, S


def token_shift(z):
    """Previous row of z along T (zeros before the first token)."""
    return F.pad(z, (0, 0, 1, -1))


class TimeMix(nn.Module):
    def __init__(self, layer, cfg):
        super().__init__()
        C, A, N, Dm, Dw, L = cfg["n_embd"], cfg["dim_att"], cfg["head_size"], cfg["dim_mix_lora"], cfg["dim_decay_lora"], cfg["n_layer"]
        H = A // N
        self.H, self.N, self.Dm = H, N, Dm
        # official init (spec appendix B)
        rho0 = layer / (L - 1) if L > 1 else 0.0
        rho1 = 1.0 - layer / L
        phi = torch.arange(C, dtype=torch.float32) / C
        n = torch.arange(A, dtype=torch.float32)
        v3 = lambda t: t.view(1, 1, -1).clone()
        self.time_maa_x = nn.Parameter(v3(1.0 - phi ** rho1))
        self.time_maa_w = nn.Parameter(v3(1.0 - phi ** rho1))
        self.time_maa_k = nn.Parameter(v3(1.0 - phi ** rho1))
        self.time_maa_v = nn.Parameter(v3(1.0 - (phi ** rho1 + 0.3 * rho0)))
        self.time_maa_r = nn.Parameter(v3(1.0 - phi ** (0.5 * rho1)))
        self.time_maa_g = nn.Parameter(v3(1.0 - phi ** (0.5 * rho1)))
        self.time_maa_w1 = nn.Parameter(torch.zeros(C, 5 * Dm))
        self.time_maa_w2 = nn.Parameter(torch.empty(5, Dm, C).uniform_(-0.01, 0.01))
        self.time_decay = nn.Parameter(v3(-6.0 + 5.0 * (n / (A - 1)) ** (0.7 + 1.3 * rho0)))
        self.time_decay_w1 = nn.Parameter(torch.zeros(C, Dw))
        self.time_decay_w2 = nn.Parameter(torch.empty(Dw, A).uniform_(-0.01, 0.01))
        self.time_faaaa = nn.Parameter((rho0 * (1.0 - n / (A - 1)) + 0.1 * (((n + 1) % 3) - 1)).view(H, N).clone())
        self.receptance = nn.Linear(C, A, bias=False)
        self.key = nn.Linear(C, A, bias=False)
        self.value = nn.Linear(C, A, bias=False)
        self.output = nn.Linear(A, C, bias=False)
        self.gate = nn.Linear(C, A, bias=False)
        self.ln_x = nn.GroupNorm(H, A, eps=64e-5)
        with torch.no_grad():
            nn.init.orthogonal_(self.receptance.weight, gain=1.0)
            nn.init.orthogonal_(self.key.weight, gain=0.1)
            nn.init.orthogonal_(self.value.weight, gain=1.0)
            nn.init.orthogonal_(self.gate.weight, gain=0.1)
            self.output.weight.zero_()
            self.ln_x.weight.fill_(((1 + layer) / L) ** 0.7)
            self.ln_x.bias.zero_()

    def forward(self, z, wkv="chunked", chunk=16):
        """z: LN1 output [B, T, C]."""
        B, T, C = z.shape
        H, N = self.H, self.N
        dx = token_shift(z) - z
        zx = z + dx * self.time_maa_x
        q = torch.tanh(zx @ self.time_maa_w1).view(B * T, 5, self.Dm).transpose(0, 1)
        e = torch.bmm(q, self.time_maa_w2).view(5, B, T, C)
        mw, mk, mv, mr, mg = e.unbind(0)
        zw = z + dx * (self.time_maa_w + mw)
        zk = z + dx * (self.time_maa_k + mk)
        zv = z + dx * (self.time_maa_v + mv)
        zr = z + dx * (self.time_maa_r + mr)
        zg = z + dx * (self.time_maa_g + mg)
        r = self.receptance(zr)
        k = self.key(zk)
        v = self.value(zv)
        g = F.silu(self.gate(zg))
        omega = self.time_decay + torch.tanh(zw @ self.time_decay_w1) @ self.time_decay_w2
        lam = -torch.exp(omega)                 # log of the per-token decay w (<= 0)
        shp = (B, T, H, N)
        args = (r.view(shp), k.view(shp), v.view(shp), lam.view(shp), self.time_faaaa)
        if wkv == "chunked":
            y, _ = wkv_chunked(*args, chunk=chunk)
        else:
            y, _ = wkv_sequential(*args)
        y = self.ln_x(y.reshape(B * T, H * N)).view(B, T, H * N)
        return self.output(y * g)


class ChannelMix(nn.Module):
    def __init__(self, layer, cfg):
        super().__init__()
        C, Fd, L = cfg["n_embd"], cfg["dim_ffn"], cfg["n_layer"]
        rho1 = 1.0 - layer / L
        phi = torch.arange(C, dtype=torch.float32) / C
        self.time_maa_k = nn.Parameter((1.0 - phi ** (rho1 ** 3)).view(1, 1, C).clone())
        self.time_maa_r = nn.Parameter((1.0 - phi ** (rho1 ** 3)).view(1, 1, C).clone())
        self.key = nn.Linear(C, Fd, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(Fd, C, bias=False)
        with torch.no_grad():
            nn.init.orthogonal_(self.key.weight, gain=1.0)
            self.receptance.weight.zero_()
            self.value.weight.zero_()

    def forward(self, z):
        dx = token_shift(z) - z
        zk = z + dx * self.time_maa_k
        zr = z + dx * self.time_maa_r
        kk = torch.relu(self.key(zk)) ** 2
        return torch.sigmoid(self.receptance(zr)) * self.value(kk)


class Block(nn.Module):
    def __init__(self, layer, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.layer = layer
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        if layer == 0:
            self.ln0 = nn.LayerNorm(C, eps=1e-5)
        self.att = TimeMix(layer, cfg)
        self.ffn = ChannelMix(layer, cfg)

    def forward(self, x, wkv="chunked", chunk=16):
        if self.layer == 0:
            x = self.ln0(x)
        x = x + self.att(self.ln1(x), wkv=wkv, chunk=chunk)
        x = x + self.ffn(self.ln2(x))
        return x


class Finch(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        V, C = cfg["vocab_size"], cfg["n_embd"]
        self.cfg = cfg
        self.emb = nn.Embedding(V, C)
        self.blocks = nn.ModuleList(Block(i, cfg) for i in range(cfg["n_layer"]))
        self.ln_out = nn.LayerNorm(C, eps=1e-5)
        self.head = nn.Linear(C, V, bias=False)
        with torch.no_grad():
            self.emb.weight.uniform_(-1e-4, 1e-4)
            nn.init.orthogonal_(self.head.weight, gain=0.5 * math.sqrt(V / C) if V > C else 0.5)

    def forward(self, idx, wkv="chunked", chunk=16):
        """idx: [B, T] int64 -> logits [B, T, V] (zero initial state)."""
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x, wkv=wkv, chunk=chunk)
        return self.head(self.ln_out(x))


def make_config(n_layer, n_embd, head_size, dim_ffn=None, dim_mix_lora=32, dim_decay_lora=64, vocab_size=256):
    return {
        "version": "x060",
        "vocab_size": vocab_size,
        "n_layer": n_layer,
        "n_embd": n_embd,
        "dim_att": n_embd,
        "head_size": head_size,
        "dim_ffn": dim_ffn if dim_ffn else int(3.5 * n_embd) // 32 * 32,
        "dim_mix_lora": dim_mix_lora,
        "dim_decay_lora": dim_decay_lora,
    }


def config_from_state_dict(sd):
    """Read the hyperparameters off the tensor shapes (spec 2.1)."""
    V, C = sd["emb.weight"].shape
    L = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    H, N = sd["blocks.0.att.time_faaaa"].shape
    cfg = make_config(L, C, N, dim_ffn=sd["blocks.0.ffn.key.weight"].shape[0],
                      dim_mix_lora=sd["blocks.0.att.time_maa_w1"].shape[1] // 5,
                      dim_decay_lora=sd["blocks.0.att.time_decay_w1"].shape[1], vocab_size=V)
    cfg["dim_att"] = sd["blocks.0.att.key.weight"].shape[0]
    return cfg


def load_checkpoint(path):
    """Official-layout .pth -> Finch in float32 (values exactly the stored ones, upcast)."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = Finch(config_from_state_dict(sd))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model.eval()
    return model, sd


def save_checkpoint(model, path):
    sd = {k: v.detach().to(torch.bfloat16).contiguous().clone() for k, v in model.state_dict().items()}
    write_state_dict(sd, path)
    return sd


def write_state_dict(sd, path):
    """torch.save a plain dict; written under the same base name in a temporary folder and
    moved into place, so that the folder inside the zip is the file stem (as official files)."""
    d = os.path.dirname(os.path.abspath(path))
    tmpdir = os.path.join(d, ".tmp-save-" + str(os.getpid()))
    os.makedirs(tmpdir, exist_ok=True)
    tmp = os.path.join(tmpdir, os.path.basename(path))
    torch.save(sd, tmp)
    os.replace(tmp, path)
    os.rmdir(tmpdir)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model, data, ctx, batch, max_windows, chunk):
    """Mean NLL (nats/byte) over non-overlapping windows of ctx+1 bytes from the start of data."""
    model.eval()
    n = min((len(data) - 1) // ctx, max_windows)
    tot, cnt = 0.0, 0
    for s in range(0, n, batch):
        idx = torch.arange(s, min(n, s + batch)) * ctx
        xb = torch.stack([data[i:i + ctx] for i in idx.tolist()]).long()
        yb = torch.stack([data[i + 1:i + 1 + ctx] for i in idx.tolist()]).long()
        logits = model(xb, chunk=chunk)
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="sum").item()
        cnt += yb.numel()
    model.train()
    return tot / cnt


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # weight decay only on the big matrices (Linear weights, emb, head)
        if p.dim() == 2 and name.endswith(".weight") and "ln" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output .pth (official layout, bf16)")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--head-size", type=int, default=64)
    ap.add_argument("--dim-ffn", type=int, default=0, help="0 = int(3.5*C)//32*32")
    ap.add_argument("--dim-mix-lora", type=int, default=32)
    ap.add_argument("--dim-decay-lora", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-final", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-windows", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-budget-min", type=float, default=22.0,
                    help="wall-time budget of the training loop (see the schedule comment)")
    ap.add_argument("--self-test", action="store_true", help="check chunked WKV vs the loop and exit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    cfg = make_config(args.n_layer, args.n_embd, args.head_size, args.dim_ffn or None,
                      args.dim_mix_lora, args.dim_decay_lora)
    assert cfg["dim_att"] % cfg["head_size"] == 0

    if args.self_test:
        m = Finch(cfg)
        with torch.no_grad():  # make every parameter matter
            for name, p in m.named_parameters():
                p.add_(torch.empty_like(p).uniform_(-0.2, 0.2))
        x = torch.randint(0, 256, (2, 45))
        a = m(x, wkv="chunked", chunk=args.chunk)
        b = m(x, wkv="sequential")
        print(f"self-test: chunked vs sequential max |dlogit| = {(a - b).abs().max().item():.3e}")
        return

    names, n_fortunes, train_b, val_b = build_corpus(args.seed, args.val_fraction)
    train = torch.frombuffer(bytearray(train_b), dtype=torch.uint8)
    val = torch.frombuffer(bytearray(val_b), dtype=torch.uint8)
    print(f"corpus: {len(names)} fortune files, {n_fortunes} fortunes, train {len(train_b)} bytes, "
          f"val {len(val_b)} bytes", flush=True)

    model = Finch(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config: {json.dumps(cfg)}", flush=True)
    print(f"parameters: {n_params} (bf16 ~{2 * n_params / 1e6:.2f} MB)", flush=True)

    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)

    # Schedule: linear warm-up, then cosine decay to --lr-final over the "progress", which is
    # the larger of steps/--steps and elapsed/--time-budget-min. On an idle machine the run is
    # exactly --steps steps (reproducible); on a busy one it ends on time with a fully decayed
    # learning rate instead of being cut off mid-schedule.
    budget = args.time_budget_min * 60.0

    def lr_at(step, prog):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        return args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * min(1.0, prog)))

    t0 = time.time()
    ema = None
    step = 0
    hist = []
    stop_reason = "steps"
    while True:
        el = time.time() - t0
        prog = max(step / args.steps, el / budget)
        if prog >= 1.0:
            stop_reason = "steps" if step >= args.steps else "time budget"
            break
        lr = lr_at(step, prog)
        for g in opt.param_groups:
            g["lr"] = lr
        off = torch.randint(0, len(train) - args.ctx - 1, (args.batch,), generator=gen)
        xb = torch.stack([train[i:i + args.ctx] for i in off.tolist()]).long()
        yb = torch.stack([train[i + 1:i + 1 + args.ctx] for i in off.tolist()]).long()
        logits = model(xb, chunk=args.chunk)
        loss = F.cross_entropy(logits.reshape(-1, 256), yb.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        el = time.time() - t0
        if step % 25 == 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  ema {ema:.4f}  lr {lr:.2e}  "
                  f"{el:7.1f}s  {el / step:.3f}s/step  progress {prog:.3f}", flush=True)
        if step % args.eval_every == 0:
            vl = evaluate(model, val, args.ctx, 32, args.eval_windows, args.chunk)
            hist.append((step, round(ema, 4), round(vl, 4)))
            print(f"  eval step {step}: val {vl:.4f} nats/byte (first {args.eval_windows} windows)", flush=True)
    print(f"stopped after {step} steps ({stop_reason})", flush=True)
    train_time = time.time() - t0
    steps_done = step

    save_checkpoint(model, args.out)
    size = os.path.getsize(args.out)
    # Final losses of the SAVED (bf16) weights, evaluated in fp32.
    saved, _ = load_checkpoint(args.out)
    vl = evaluate(saved, val, args.ctx, 32, 10 ** 9, args.chunk)
    tl = evaluate(saved, train, args.ctx, 32, args.eval_windows * 4, args.chunk)
    report = {
        "out": args.out,
        "config": cfg,
        "parameters": n_params,
        "file_bytes": size,
        "steps": steps_done,
        "stop_reason": stop_reason,
        "tokens_seen": steps_done * args.batch * args.ctx,
        "train_time_s": round(train_time, 1),
        "train_loss_ema_last": round(ema, 4),
        "final_train_loss_bf16": round(tl, 4),
        "final_val_loss_bf16": round(vl, 4),
        "eval_history": hist,
        "corpus": {"files": names, "fortunes": n_fortunes, "train_bytes": len(train_b), "val_bytes": len(val_b)},
        "args": vars(args),
        "torch": torch.__version__,
    }
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

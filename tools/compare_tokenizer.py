#!/usr/bin/env python3
"""Developer tool: encode throughput of the PyPI `rwkv-tokenizer` (Rust) package on the same
text as benchmarks/bench_tokenizer.cpp, and the ratio to ours.

    pip install rwkv-tokenizer          # 0.5.2 has a manylinux wheel; newer ones need cargo
    python3 tools/compare_tokenizer.py [--bench build-tok/benchmarks/bench_tokenizer]

Text: tok_text1.bin with every ill-formed UTF-8 subpart replaced by U+FFFD (Python's
errors='replace' = rwkv::Utf8Stream's default policy), repeated whole until >= 1 MiB. This is
the `BM_encode/valid_utf8:1` input of the C++ benchmark (the Rust package accepts only str).
Also checks the Rust ids against the golden edge cases that are valid UTF-8.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "fixtures"))


def best_of(n, fn):
    """Best (wall, cpu) seconds over n runs: the CPU figure is steadier on a shared machine."""
    wall = cpu = float("inf")
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    ap.add_argument("--bench", help="path to bench_tokenizer, to report the ratio")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    vocab = os.path.join(args.fixtures, "rwkv_vocab_v20230424.txt")
    raw = open(os.path.join(args.fixtures, "tokenizer", "tok_text1.bin"), "rb").read()
    unit = raw.decode("utf-8", "replace")
    n_copies = -(-(1 << 20) // len(unit.encode("utf-8")))
    text = unit * n_copies
    n_bytes = len(text.encode("utf-8"))
    print(f"text: {n_bytes} bytes ({n_copies} copies of tok_text1 with U+FFFD replacements)")

    try:
        from rwkv_tokenizer import WorldTokenizer
    except ImportError:
        print("rwkv_tokenizer is not installed (pip install rwkv-tokenizer); nothing to compare")
        return 1

    t0 = time.perf_counter()
    tok = WorldTokenizer(vocab)
    print(f"rust rwkv-tokenizer: vocab load {1e3 * (time.perf_counter() - t0):.1f} ms")
    ids = tok.encode(text)
    enc_wall, enc_cpu = best_of(args.repeats, lambda: tok.encode(text))
    dec_wall, dec_cpu = best_of(args.repeats, lambda: tok.decode(ids))
    rust = {"wall": n_bytes / enc_wall / 1e6, "cpu": n_bytes / enc_cpu / 1e6}
    print(f"rust rwkv-tokenizer: encode {rust['wall']:.1f} MB/s wall, {rust['cpu']:.1f} MB/s cpu;"
          f" decode {n_bytes / dec_wall / 1e6:.1f} MB/s wall; {len(ids)} tokens (best of {args.repeats})")

    cases = json.load(open(os.path.join(args.fixtures, "tokenizer", "tok_edge_cases.json")))["cases"]
    checked = mismatched = 0
    for c in cases:
        b = bytes.fromhex(c["bytes_hex"])
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        checked += 1
        if list(tok.encode(s)) != c["ids"]:
            mismatched += 1
            print(f"  rust ids differ from golden for {c['bytes_hex']}")
    print(f"rust vs golden edge cases (valid UTF-8 only): {checked - mismatched}/{checked} identical")

    if args.bench:
        out = subprocess.run(
            [args.bench, "--benchmark_filter=BM_encode/valid_utf8:1$", "--benchmark_repetitions=3",
             "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
        runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
        for kind, key in (("wall", "real_time"), ("cpu", "cpu_time")):
            ours = max(b["bytes"] / (b[key] * scale[b["time_unit"]]) for b in runs) / 1e6
            print(f"rwkv (C++) encode: {ours:.1f} MB/s {kind} on the same text (best of 3);"
                  f" ratio C++ / Rust ({kind}): {ours / rust[kind]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

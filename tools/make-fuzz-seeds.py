#!/usr/bin/env python3
"""Writes the small committed seed corpora of tests/fuzz/corpus/<name>/ (run from anywhere;
standard library only, no torch). The pickles come from CPython's own pickler at protocols 1-5,
with stand-ins for the torch globals, so they are byte-for-byte what torch.save's pickler emits
for a state dict (torch.save: protocol 2, persistent ids ('storage', <Storage class>, key,
location, numel)). The tests read some of these files too (tests/test_pickle.cpp, test_pth.cpp)."""
import collections, io, os, pickle, struct, sys, types, zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")

# --- stand-ins with the names torch's pickles reference --------------------------------------
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
def _storage(name):
    cls = type(name, (), {}); cls.__module__ = "torch"; setattr(torch, name, cls); return cls
FloatStorage, DoubleStorage, HalfStorage, BFloat16Storage = (
    _storage(n) for n in ("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage"))
def _rebuild_tensor_v2(*args): raise RuntimeError("stand-in")
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class Storage:
    def __init__(self, cls, key, numel): self.cls, self.key, self.numel = cls, key, numel

class Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.args = (storage, offset, tuple(shape), tuple(stride), False, collections.OrderedDict())
    def __reduce_ex__(self, proto): return (_rebuild_tensor_v2, self.args)

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage): return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None

def dumps(obj, proto):
    b = io.BytesIO(); Pickler(b, protocol=proto).dump(obj); return b.getvalue()

def contiguous(shape):
    st, acc = [], 1
    for d in reversed(shape): st.insert(0, acc); acc *= d
    return st

def zput(z, name, data):
    """writestr with a fixed timestamp, so the seeds are byte-identical on every run."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = z.compression
    z.writestr(info, data)

def write(folder, name, data):
    d = os.path.join(ROOT, folder); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f: f.write(data)

def pth(entries, compress=zipfile.ZIP_STORED, archive="archive", top=None):
    """entries: name -> (storage class, fmt, values, shape, stride); a torch.save-like zip."""
    tensors, blobs = {}, {}
    for i, (name, (cls, fmt, values, shape, stride)) in enumerate(entries.items()):
        blobs[str(i)] = struct.pack("<%d%s" % (len(values), fmt), *values)
        tensors[name] = Tensor(Storage(cls, str(i), len(values)), 0, shape, stride or contiguous(shape))
    obj = collections.OrderedDict(tensors) if top is None else top(collections.OrderedDict(tensors))
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression=compress) as z:
        zput(z, archive + "/data.pkl", dumps(obj, 2))
        zput(z, archive + "/byteorder", "little")
        for k, v in blobs.items(): zput(z, archive + "/data/" + k, v)
        zput(z, archive + "/version", "3\n")
    return b.getvalue()

def f32(shape, start=0.0, stride=None):
    n = 1
    for d in shape: n *= d
    return (FloatStorage, "f", [start + 0.25 * i for i in range(n)], shape, stride)

# --- pickle: one small state dict at every protocol torch can write with ---------------------
sd = collections.OrderedDict(
    [("emb.weight", Tensor(Storage(FloatStorage, "0", 6), 0, (2, 3), (3, 1))),
     ("blocks.0.att.time_state", Tensor(Storage(DoubleStorage, "1", 8), 0, (1, 2, 2), (4, 2, 1))),
     ("w.t", Tensor(Storage(FloatStorage, "0", 6), 0, (3, 2), (1, 3))),
     ("_version", 3), ("big", 1 << 40), ("neg", -5), ("f", 0.5), ("flag", True)])
for proto in range(1, 6):
    d = collections.OrderedDict(sd)
    if proto >= 3: d["b"] = b"\x00\x01"  # before protocol 3, bytes pickle as a _codecs.encode call
    write("pickle", "state-dict-proto%d.pkl" % proto, dumps(d, proto))
write("pickle", "state-dict-proto0-values.pkl", dumps({"i": 7, "neg": -3, "big": 1 << 40, "f": 0.25, "t": True,
                                                         "l": [1, 2], "n": None}, 0))
write("pickle", "nested-state-dict-proto2.pkl", dumps({"epoch": 3, "state_dict": sd}, 2))

# --- zip ---------------------------------------------------------------------------------------
for comp, tag in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression=comp) as z:
        zput(z, "a/data.pkl", b"\x80\x02}q\x00.")
        zput(z, "a/data/0", bytes(range(64)) * 4)
        zput(z, "a/empty", b"")
    write("zip", tag + ".zip", b.getvalue())

# --- pth: small checkpoints of every shape the reader handles ----------------------------------
write("pth", "plain.pth", pth({"emb.weight": f32((4, 2)), "ln_out.weight": f32((2,), 1.0)}))
write("pth", "deflated.pth", pth({"emb.weight": f32((4, 2))}, zipfile.ZIP_DEFLATED))
write("pth", "float64.pth", pth({"x": (DoubleStorage, "d", [1.5, -2.0, 3.25, 0.0], (2, 2), None)}))
write("pth", "transposed.pth", pth({"x": f32((3, 2), 0.0, (1, 3))}))
write("pth", "state-only.pth", pth({"blocks.%d.att.time_state" % l: f32((1, 2, 2)) for l in range(2)}))
write("pth", "module-prefix.pth", pth({"module.emb.weight": f32((4, 2)), "module.ln_out.weight": f32((2,))}))
write("pth", "forward-module-prefix.pth", pth({"_forward_module.emb.weight": f32((4, 2))}))
write("pth", "state-dict-nesting.pth", pth({"emb.weight": f32((4, 2))},
                                           top=lambda d: {"epoch": 1, "state_dict": d}))

# --- state: first byte picks the target State's shape (see fuzz_state.cpp), then the blob ------
def fnv1a(b):
    h = 1469598103934665603
    for x in b: h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
def state_blob(fmt, shape, fingerprint, floats):
    body = b"RWKVSTAT" + struct.pack("<I", fmt) + struct.pack("<%dI" % len(shape), *shape)
    if fmt == 2: body += struct.pack("<Q", fingerprint)
    body += struct.pack("<Q", len(floats)) + struct.pack("<%df" % len(floats), *floats)
    return body + struct.pack("<Q", fnv1a(body))
# Selector 0x01: x052, 1 layer, C 16, head size 8 (H 2), F 32*16*3.5/32, V 64 (fuzz_state.cpp).
shape = [0, 1, 16, 2, 8, 16, 32 * 16 * 7 // 2 // 32, 64, 32, 64]
shape[6] = int(3.5 * 16) // 32 * 32
floats = [0.5 * i for i in range(2 * 16 + 2 * 8 * 8)]
write("state", "v2-x052-L1", b"\x01" + state_blob(2, shape, 0, floats))
write("state", "v1-x052-L1", b"\x01" + state_blob(1, shape[:5], 0, floats))

# --- text-like targets ----------------------------------------------------------------------------
write("utf8", "mixed", b"\x03ab\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\xed\xa0\x80\xf4\x90\x80\x80\xc0\x80\xff")
write("tokenizer", "mixed", "Hello, world!\n\n中文 ελληνικά 😀 \t\r\n".encode() + b"\xff\xfe")
write("vocab", "small.txt", b"1 '\\x00' 1\n2 'a' 1\n3 b'\\xff' 1\n4 'ab' 2\n5 '\\u4e2d' 3\n6 \"'\" 1\n")
write("sampler", "basic", struct.pack("<HB", 50, 0) + bytes([64, 200, 8, 8, 250]) + struct.pack("<hQB", 5, 7, 1) +
      struct.pack("<h", 3) + struct.pack("<50f", *[float(i % 9) for i in range(50)]))
print("seeds written under", os.path.normpath(ROOT))

#!/usr/bin/env python3
"""Writes the small hand-made seed inputs of the reader fuzz targets into corpus/<name>/.
Run from this folder; the seeds are committed, this script documents how they were made."""
import json, os, struct

def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def f32(*v):
    return struct.pack("<%df" % len(v), *v)

# --- GGUF: metadata of each value kind, an rwkv6 vocabulary, F32 / F16 / Q8_0 / fused-lerp tensors.
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def gguf(kvs, tensors):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, payload in kvs:
        out += gstr(k) + struct.pack("<I", t) + payload
    off, blobs = 0, b""
    for name, ne, typ, data in tensors:
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", typ, off)
        pad = (len(data) + 31) // 32 * 32
        blobs += data + b"\0" * (pad - len(data))
        off += pad
    out += b"\0" * ((len(out) + 31) // 32 * 32 - len(out))
    return out + blobs

arch = ("general.architecture", 8, gstr("rwkv6"))
vocab = [("tokenizer.ggml.model", 8, gstr("rwkv")),
         ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 4) + gstr("<s>") + gstr("a") + gstr("\\n") + gstr("\\xff")),
         ("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, 4) + struct.pack("<4i", 3, 1, 1, 1))]
q8 = struct.pack("<e", 0.5) + bytes(range(32))
put("corpus/gguf/minimal.gguf", gguf([arch], []))
put("corpus/gguf/rwkv6.gguf", gguf(
    [arch, ("rwkv6.block_count", 4, struct.pack("<I", 2)), ("rwkv6.rescale_every_n_layers", 4, struct.pack("<I", 1)),
     ("f", 6, f32(1.5)), ("b", 7, b"\1"), ("i", 11, struct.pack("<q", -3)), ("d", 12, struct.pack("<d", 2.5))] + vocab,
    [("token_embd.weight", [4, 2], 0, f32(*range(8))),
     ("blk.0.time_mix_lerp_fused.weight", [4, 1, 1, 5], 0, f32(*range(20))),
     ("blk.0.time_mix_w1.weight", [4, 5], 0, f32(*range(20))),
     ("blk.1.time_mix_output.weight", [4, 4], 1, struct.pack("<16e", *range(16))),
     ("blk.1.channel_mix_value.weight", [32, 1], 8, q8)]))

arch5 = ("general.architecture", 8, gstr("rwkv5"))
u32 = lambda v: struct.pack("<I", v)
put("corpus/gguf/rwkv5.gguf", gguf(
    [arch5, ("rwkv5.block_count", 4, u32(2)), ("rwkv5.embedding_length", 4, u32(4)),
     ("rwkv5.wkv.head_size", 4, u32(2)), ("rwkv5.rescale_every_n_layers", 4, u32(1))],
    [("token_embd.weight", [4, 2], 0, f32(*range(8))),
     ("blk.0.time_mix_lerp_k.weight", [4], 0, f32(*range(4))),
     ("blk.0.time_mix_decay.weight", [4], 0, f32(-6, -5, -4, -3)),
     ("blk.0.time_mix_first.weight", [2, 2], 0, f32(*range(4))),
     ("blk.1.time_mix_output.weight", [4, 4], 1, struct.pack("<16e", *range(16))),
     ("blk.1.channel_mix_value.weight", [32, 1], 8, q8)]))

# --- safetensors: official and HF names, F32 / BF16 / F16, metadata.
def safetensors(tensors, meta=None):
    header, data = {}, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("corpus/safetensors/official.safetensors", safetensors(
    [("emb.weight", "F32", [2, 2], f32(1, 2, 3, 4)), ("head.weight", "BF16", [2], b"\x80\x3f\x00\x40")], {"format": "pt"}))
put("corpus/safetensors/hf.safetensors", safetensors(
    [("rwkv.embeddings.weight", "F16", [2], struct.pack("<2e", 1, 2)),
     ("rwkv.blocks.0.attention.time_mix_key", "F32", [1, 1, 2], f32(0.5, 0.25))]))

# --- rwkv.cpp .bin: an x052-style file (decay stored as w) and an x060-style quantized LoRA.
def rwkvcpp(tensors, version=101):
    out = struct.pack("<6i", 0x67676D66, version, 4, 4, 1, 0)
    for name, ne, typ, data in tensors:
        b = name.encode()
        out += struct.pack("<3i", len(ne), len(b), typ) + struct.pack("<%di" % len(ne), *ne) + b + data
    return out

put("corpus/rwkvcpp/x052.bin", rwkvcpp(
    [("blocks.0.att.ln_x.weight", [4], 0, f32(1, 1, 1, 1)), ("blocks.0.att.time_decay", [1, 2, 2], 0, f32(0.5, 0.9, 0.99, 1.0)),
     ("blocks.0.att.time_mix_k", [4], 0, f32(1, 2, 3, 4)), ("blocks.0.att.key.weight", [2, 2], 1, struct.pack("<4e", 1, 2, 3, 4))]))
put("corpus/rwkvcpp/x060.bin", rwkvcpp(
    [("blocks.0.att.time_maa_x", [4], 0, f32(1, 2, 3, 4)), ("blocks.0.att.time_maa_w1", [32, 1], 9, q8),
     ("blocks.0.att.time_decay", [1, 2, 2], 0, f32(-1, -2, -3, -4))]))

# --- open: one of each kind plus a shard index.
for src, dst in [("gguf/rwkv6.gguf", "a"), ("safetensors/hf.safetensors", "b"), ("rwkvcpp/x060.bin", "c")]:
    with open("corpus/" + src, "rb") as f:
        put("corpus/open/" + dst, f.read())
put("corpus/open/index.json", b'{"weight_map":{"x":"missing.safetensors"}}')
put("corpus/open/zip", b"PK\x03\x04" + b"\0" * 26)

# --- rwkv-server requests (fuzz_server_request): first byte 0 = /v1/completions, 1 = /v1/chat/completions.
def request(endpoint, body):
    return bytes([endpoint]) + (body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode())

put("corpus/server_request/completion.json", request(0, {"prompt": "The best thing about", "max_tokens": 40,
                                                         "temperature": 0, "stop": ["\n"], "stream": True}))
put("corpus/server_request/token_ids.json", request(0, {"prompt": [84, 104, 101], "seed": 7, "top_p": 0.9, "top_k": 5,
                                                        "presence_penalty": 0.5, "frequency_penalty": -0.5}))
put("corpus/server_request/chat.json", request(1, {"model": "m", "messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\r\n\n\nthere"},
    {"role": "assistant", "content": " Hello!"}, {"role": "user", "content": [{"type": "text", "text": "More?"}]}],
    "stream": True, "stream_options": {"include_usage": True}}))
put("corpus/server_request/chat_fields.json", request(1, {"messages": [{"role": "user", "content": "x"}],
                                                          "max_completion_tokens": 3, "n": 1, "logprobs": False,
                                                          "cache_prompt": False}))
put("corpus/server_request/bad_types.json", request(0, {"prompt": "x", "temperature": "hot", "max_tokens": -1}))
put("corpus/server_request/malformed.json", request(0, b"{not json"))

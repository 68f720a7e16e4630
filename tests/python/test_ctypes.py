#!/usr/bin/env python3
"""Smoke test of librwkv.so through Python's ctypes (no packages needed): load, tokenize, generate
with a callback, errors as status + message. Usage: test_ctypes.py LIBRWKV MODEL"""
import ctypes as C
import sys

lib = C.CDLL(sys.argv[1])
model_path = sys.argv[2].encode()

lib.rwkv_last_error.restype = C.c_char_p
lib.rwkv_version.restype = C.c_char_p
CALLBACK = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_char), C.c_size_t, C.c_void_p)
lib.rwkv_model_load.argtypes = [C.c_char_p, C.c_char_p, C.POINTER(C.c_void_p)]
lib.rwkv_model_free.argtypes = [C.c_void_p]
lib.rwkv_tokenize.argtypes = [C.c_void_p, C.c_char_p, C.c_size_t, C.POINTER(C.c_int32), C.c_size_t,
                              C.POINTER(C.c_size_t)]
lib.rwkv_detokenize.argtypes = [C.c_void_p, C.POINTER(C.c_int32), C.c_size_t, C.c_char_p, C.c_size_t,
                                C.POINTER(C.c_size_t)]
lib.rwkv_session_new.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(C.c_void_p)]
lib.rwkv_session_free.argtypes = [C.c_void_p]
lib.rwkv_session_prompt.argtypes = [C.c_void_p, C.c_char_p, C.c_size_t]
lib.rwkv_session_generate.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(C.c_char_p), C.c_size_t, CALLBACK,
                                      C.c_void_p, C.POINTER(C.c_size_t)]


def check(cond, what):
    if not cond:
        sys.exit("FAILED: %s (last error: %s)" % (what, lib.rwkv_last_error().decode()))


check(lib.rwkv_version().decode() != "", "version")
model = C.c_void_p()
check(lib.rwkv_model_load(b"/nonexistent.pth", None, C.byref(model)) == 1, "missing file fails")
check(b"/nonexistent.pth" in lib.rwkv_last_error(), "error names the file")
check(lib.rwkv_model_load(model_path, None, C.byref(model)) == 0, "load")

ids = (C.c_int32 * 16)()
n = C.c_size_t()
check(lib.rwkv_tokenize(model, b"abc", 3, ids, 16, C.byref(n)) == 0 and n.value == 3, "tokenize")
buf = C.create_string_buffer(16)
check(lib.rwkv_detokenize(model, ids, 3, buf, 16, C.byref(n)) == 0 and buf.raw[:n.value] == b"abc", "detokenize")

session = C.c_void_p()
check(lib.rwkv_session_new(model, None, C.byref(session)) == 0, "session")
check(lib.rwkv_session_prompt(session, b"Fortune: ", 9) == 0, "prompt")
pieces = []


@CALLBACK
def on_text(text, length, user):
    pieces.append(C.string_at(text, length).decode("utf-8"))
    return 1 if len(pieces) < 20 else 0


tokens = C.c_size_t()
check(lib.rwkv_session_generate(session, 100, None, 0, on_text, None, C.byref(tokens)) == 0, "generate")
check(len(pieces) == 20 and tokens.value == 20, "callback stopped generation after 20 pieces")
check(lib.rwkv_session_prompt(None, b"x", 1) == 2, "NULL session is an invalid argument")
lib.rwkv_session_free(session)
lib.rwkv_model_free(model)
print("ctypes: ok:", repr("".join(pieces)))

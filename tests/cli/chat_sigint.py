#!/usr/bin/env python3
"""rwkv-chat and SIGINT: the first Ctrl-C stops the reply in progress and the chat goes on; one at the
prompt exits (status 0) after saving to --state-out. The tiny greedy model never writes a blank line
after "hi", so its reply runs until interrupted. Usage: chat_sigint.py [EMULATOR...] RWKV_CHAT MODEL STATE_OUT
(a cross build puts its emulator, e.g. qemu-aarch64 -L /usr/aarch64-linux-gnu, before the program)"""
import os
import select
import signal
import subprocess
import sys
import time

*chat, model, state_out = sys.argv[1:]
p = subprocess.Popen(chat + ["--model", model, "--temperature", "0", "-n", "100000000", "--state-out", state_out],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out = b""


def read_until(pred, what, timeout=60):
    global out
    end = time.time() + timeout
    while not pred(out):
        if time.time() > end or p.poll() is not None:
            p.kill()
            sys.exit("FAILED waiting for %s; output so far: %r; stderr: %r" % (what, out[-500:], p.stderr.read()))
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            out += os.read(p.stdout.fileno(), 65536)


for turn in (1, 2):
    p.stdin.write(b"hi\n")
    p.stdin.flush()
    read_until(lambda o: o.count(b"Assistant: ") == turn and len(o.split(b"Assistant: ")[-1]) > 200, "a long reply")
    p.send_signal(signal.SIGINT)
    read_until(lambda o: o.count(b"[interrupted]") == turn, "[interrupted]")
time.sleep(0.3)  # back at the prompt
p.send_signal(signal.SIGINT)
try:
    rc = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("FAILED: Ctrl-C at the prompt did not exit")
err = p.stderr.read().decode()
if rc != 0 or not os.path.exists(state_out) or "session saved to" not in err:
    sys.exit("FAILED: rc %d, state file %s, stderr: %s" % (rc, os.path.exists(state_out), err))
print("ok: two replies interrupted, exit at the prompt saved", state_out)

#!/usr/bin/env python3
"""rwkv-server end to end: CTest runs one scenario per test (tests/server.cmake).

Each scenario starts the server on a free loopback port (--port 0; the port is read from its stderr) with
the bundled demo model, waits for /health, drives it with curl and with Python's standard library (the
`openai` scenario with the official client when it is installed), and stops it with SIGTERM.

    test_server.py SCENARIO --server build/examples/rwkv-server --generate build/examples/rwkv-generate

Exit status: 0 passed, 1 failed, 77 skipped (the openai package is absent).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

SKIP = 77


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Server:
    """A running rwkv-server; its stderr is collected in the background (the request log)."""

    def __init__(self, exe, *args):
        # One model thread: the demo model is tiny, and on a loaded CI machine a second thread only adds waits at
        # every parallel region (results do not depend on the thread count).
        self.proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0", "-t", "1", *args],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines = []
        self.port = None
        ready = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        ready.wait(60)
        if not self.port:
            self.proc.kill()
            raise Failure("the server did not start:\n" + self.log())
        deadline = time.time() + 30
        while True:
            try:
                status, _ = self.get("/health")
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.proc.kill()
                raise Failure("/health never answered 200")
            time.sleep(0.05)

    def log(self):
        return "\n".join(self.lines)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        if exc_type is None:
            check(rc == 0, f"server exit status {rc}:\n{self.log()}")

    def connect(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path):
        c = self.connect()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, json.loads(body) if body else None

    def post(self, path, body):
        """POST a dict (sent as JSON) or raw bytes; returns (status, parsed JSON)."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        c = self.connect()
        c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
        c.close()
        check(r.getheader("Content-Type", "").startswith("application/json"),
              f"{path}: response is {r.getheader('Content-Type')}, not JSON: {raw[:200]!r}")
        return r.status, json.loads(raw)

    def stream(self, path, body):
        """POST with stream=true; returns the list of SSE data payloads (parsed JSON, or the string [DONE])."""
        c = self.connect()
        c.request("POST", path, body=json.dumps({**body, "stream": True}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise Failure(f"stream {path}: status {r.status}: {r.read()[:300]!r}")
        check(r.getheader("Content-Type", "").startswith("text/event-stream"), "stream is not text/event-stream")
        events = parse_sse(r.read().decode("utf-8"))
        c.close()
        return events

    def health(self):
        return self.get("/health")[1]

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("the server did not exit within %d s of SIGTERM:\n%s" % (timeout, self.log()))
        self.pump.join(5)
        return rc


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                payload = line[len("data: "):]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
            elif line and not line.startswith(":"):
                raise Failure(f"not an SSE line: {line!r}")
    return events


def stream_text(events, chat):
    check(events and events[-1] == "[DONE]", f"stream does not end with [DONE]: {events[-3:]}")
    out = []
    for e in events[:-1]:
        check("error" not in e, f"error event in the stream: {e}")
        for ch in e["choices"]:
            out.append(ch["delta"].get("content", "") if chat else ch["text"])
    return "".join(out)


def finish_of(events):
    reasons = [ch["finish_reason"] for e in events if e != "[DONE]" for ch in e["choices"] if ch["finish_reason"]]
    check(len(reasons) == 1, f"expected one finish_reason in the stream, got {reasons}")
    return reasons[0]


def curl(server, path, body, stream=False):
    exe = shutil.which("curl")
    check(exe, "curl is not installed (tools/setup-debian.sh installs it)")
    cmd = [exe, "-sS", "-X", "POST", f"http://127.0.0.1:{server.port}{path}", "-H", "Content-Type: application/json",
           "-d", json.dumps(body)]
    if stream:
        cmd.insert(1, "-N")
    out = subprocess.run(cmd, capture_output=True, timeout=60)
    check(out.returncode == 0, f"curl failed: {out.stderr!r}")
    return out.stdout.decode("utf-8")


def generate(exe, prompt, n, *flags):
    out = subprocess.run([exe, "-p", prompt, "-n", str(n), *flags], capture_output=True, timeout=120)
    check(out.returncode == 0, f"rwkv-generate failed: {out.stderr!r}")
    return out.stdout.decode("utf-8")


PROMPT = "The best thing about"


# ---- scenarios ------------------------------------------------------------------------------------------


def scenario_flags(a):
    out = subprocess.run([a.server, "--help"], capture_output=True, text=True)
    check(out.returncode == 0 and "--max-sessions" in out.stdout and "--cache-mb" in out.stdout,
          f"--help: {out.returncode} {out.stdout}")
    out = subprocess.run([a.server, "--version"], capture_output=True, text=True)
    check(out.returncode == 0 and out.stdout.startswith("rwkv-server (rwkv "), f"--version: {out.stdout}")
    for args, code, msg in [(["--bogus"], 2, "unknown argument '--bogus'"),
                            (["--port", "70000"], 2, "--port expects an integer in [0, 65535]"),
                            (["--prefill-chunk", "100"], 2, "multiple of 64"),
                            (["--model", "/nonexistent/model.pth"], 1, "no such model file")]:
        out = subprocess.run([a.server, *args], capture_output=True, text=True, timeout=30)
        check(out.returncode == code and msg in out.stderr, f"{args}: exit {out.returncode}, stderr {out.stderr!r}")
    # A port already taken: a clear error, not a hang.
    with Server(a.server) as s:
        out = subprocess.run([a.server, "--port", str(s.port)], capture_output=True, text=True, timeout=30)
        check(out.returncode == 1 and "cannot listen on 127.0.0.1:%d" % s.port in out.stderr, out.stderr)


def scenario_completion(a):
    with Server(a.server) as s:
        status, h = s.get("/health")
        check(status == 200 and h["status"] == "ok", f"/health: {h}")
        status, models = s.get("/v1/models")
        model = models["data"][0]["id"]
        check(status == 200 and models["object"] == "list" and model == "demo-x060-L4-D128-fortunes", str(models))
        check(s.get("/v1/models/" + model)[0] == 200 and s.get("/v1/models/nope")[0] == 404, "/v1/models/{id}")

        # Greedy, through curl: exactly what rwkv-generate prints for the same prompt and settings.
        body = {"model": model, "prompt": PROMPT, "max_tokens": 40, "temperature": 0}
        r = json.loads(curl(s, "/v1/completions", body))
        want = generate(a.generate, PROMPT, 40, "--temp", "0")
        got = r["choices"][0]["text"]
        check(got == want, f"greedy: server {got!r} != rwkv-generate {want!r}")
        check(r["object"] == "text_completion" and r["model"] == model and r["choices"][0]["finish_reason"] == "length",
              str(r))
        u = r["usage"]
        check(u["prompt_tokens"] == len(PROMPT) and u["completion_tokens"] == 40 and u["total_tokens"] == 60, str(u))

        # Sampled with a seed and penalties, through Python: the same as rwkv-generate's draw.
        body = {"prompt": PROMPT, "max_tokens": 60, "temperature": 0.8, "top_p": 0.9, "seed": 7,
                "presence_penalty": 0.5, "frequency_penalty": 0.3, "top_k": 50}
        status, r = s.post("/v1/completions", body)
        want = generate(a.generate, PROMPT, 60, "--temp", "0.8", "--top-p", "0.9", "--seed", "7",
                        "--presence-penalty", "0.5", "--frequency-penalty", "0.3", "--top-k", "50")
        check(status == 200 and r["choices"][0]["text"] == want, f"seeded: {r} != {want!r}")
        # The same request again starts from the cached prompt state: the same text, no prefill.
        status, r2 = s.post("/v1/completions", body)
        check(r2["choices"][0]["text"] == want, "seeded, from the cache: different text")
        check(r2["usage"]["prompt_tokens_details"]["cached_tokens"] == len(PROMPT) and
              r2["usage"]["prefill_tokens"] == 0, f"second identical request not served from the cache: {r2['usage']}")

        # A stop string ends the text before it (finish_reason "stop"); a token-id prompt equals the text one.
        greedy = generate(a.generate, PROMPT, 40, "--temp", "0")
        stop = greedy[10:14]
        status, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 40, "temperature": 0, "stop": [stop]})
        check(r["choices"][0]["text"] == greedy[:greedy.index(stop)] and r["choices"][0]["finish_reason"] == "stop",
              f"stop {stop!r}: {r}")
        status, r = s.post("/v1/completions",
                           {"prompt": list(PROMPT.encode()), "max_tokens": 40, "temperature": 0, "cache_prompt": False})
        check(status == 200 and r["choices"][0]["text"] == greedy, f"token-id prompt: {r}")
        check(re.search(r"cmpl-\d+ completion \| prompt 20 tokens \(cached 20, prefilled 0\)", s.log()),
              "no log line with cached/prefilled counts:\n" + s.log())


def scenario_streaming(a):
    with Server(a.server) as s:
        for path, chat, body in [
            ("/v1/completions", False, {"prompt": PROMPT, "max_tokens": 50, "temperature": 0}),
            ("/v1/completions", False, {"prompt": "Fortune", "max_tokens": 50, "temperature": 1, "seed": 3}),
            ("/v1/chat/completions", True,
             {"messages": [{"role": "user", "content": "Tell me a fortune."}], "max_tokens": 50, "temperature": 0}),
        ]:
            status, whole = s.post(path, {**body, "cache_prompt": False})
            check(status == 200, str(whole))
            text = whole["choices"][0]["message"]["content"] if chat else whole["choices"][0]["text"]
            # curl -N: the SSE chunks concatenate to the non-streaming text.
            events = parse_sse(curl(s, path, {**body, "stream": True, "cache_prompt": False}, stream=True))
            check(stream_text(events, chat) == text, f"{path}: stream {stream_text(events, chat)!r} != {text!r}")
            check(len(events) > 3, "the text came in one chunk, not streamed")
            check(finish_of(events) == whole["choices"][0]["finish_reason"], "finish reasons differ")
            want_object = "chat.completion.chunk" if chat else "text_completion"
            check(all(e["object"] == want_object and e["id"] == events[0]["id"] for e in events[:-1]), "chunk ids")
            if chat:
                check(events[0]["choices"][0]["delta"].get("role") == "assistant", "chat stream: no role first")
            # Python client, with stream_options.include_usage: a last chunk with no choices and the usage.
            events = s.stream(path, {**body, "stream_options": {"include_usage": True}})
            check(stream_text(events, chat) == text, "stream via http.client differs")
            check(events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] ==
                  whole["usage"]["completion_tokens"], f"usage chunk: {events[-2]}")


def scenario_chat_cache(a):
    with Server(a.server) as s:
        m1, m2 = "Tell me a fortune.", "And another one?"
        first = {"messages": [{"role": "user", "content": m1}], "max_tokens": 48, "temperature": 0}
        status, r1 = s.post("/v1/chat/completions", first)
        check(status == 200 and r1["object"] == "chat.completion", str(r1))
        reply = r1["choices"][0]["message"]["content"]
        turn1 = f"User: {m1}\n\nAssistant:"
        check(r1["usage"]["prompt_tokens"] == len(turn1) and r1["usage"]["prefill_tokens"] == len(turn1), str(r1))

        second = {"messages": [{"role": "user", "content": m1}, {"role": "assistant", "content": reply},
                               {"role": "user", "content": m2}], "max_tokens": 48, "temperature": 0}
        status, r2 = s.post("/v1/chat/completions", second)
        u = r2["usage"]
        new = f"User: {m2}\n\nAssistant:"
        history = len(turn1) + len(" " + reply + "\n\n")
        check(u["prompt_tokens"] == history + len(new), f"second turn prompt tokens: {u}")
        check(u["prefill_tokens"] == len(new) and u["prompt_tokens_details"]["cached_tokens"] == history,
              f"second turn not served from the state cache (want prefill {len(new)}): {u}")

        # Without the cache the whole conversation is prefilled; the reply is the same.
        status, r3 = s.post("/v1/chat/completions", {**second, "cache_prompt": False})
        check(r3["usage"]["prefill_tokens"] == u["prompt_tokens"], str(r3["usage"]))
        check(r3["choices"][0]["message"]["content"] == r2["choices"][0]["message"]["content"],
              "the cached turn's reply differs from a full prefill's")
        check(s.health()["cache"]["entries"] >= 2, "cache entries")
        print(f"measured: second chat turn prefilled {u['prefill_tokens']} tokens with the cache, "
              f"{r3['usage']['prefill_tokens']} without")


def scenario_concurrent(a):
    with Server(a.server) as s:
        prompts = ["The best thing about", "Fortune favours", "You will", "Never trust a", "A journey of",
                   "Today is", "Love is", "Beware of"]
        n = 96

        def body(i):  # half greedy, half sampled with their own seeds
            b = {"prompt": prompts[i], "max_tokens": n, "cache_prompt": False}
            b.update({"temperature": 0} if i % 2 == 0 else {"temperature": 1.0, "top_p": 0.9, "seed": 100 + i})
            return b

        t0 = time.time()
        single = [stream_text(s.stream("/v1/completions", body(i)), False) for i in range(8)]
        single_s = time.time() - t0
        check(len(set(single)) == 8, "the 8 prompts should give 8 different texts")
        results, errors = [None] * 8, []
        go = threading.Barrier(8)

        def client(i):
            try:
                go.wait()
                results[i] = stream_text(s.stream("/v1/completions", body(i)), False)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"client {i}: {e!r}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        multi_s = time.time() - t0
        check(not errors, "; ".join(errors))
        for i in range(8):
            check(results[i] == single[i], f"client {i}: concurrent {results[i]!r} != alone {single[i]!r}")
        stats = s.health()["stats"]
        check(stats["max_batch"] >= 2, f"requests were never decoded together: {stats}")
        print(f"measured (streaming): 8 x {n} tokens, one client at a time {8 * n / single_s:.0f} tok/s, "
              f"8 concurrent clients {8 * n / multi_s:.0f} tok/s aggregate (largest batch {stats['max_batch']})")

        # The same without streaming (less client work per token), 256 tokens each.
        def whole(i):
            status, r = s.post("/v1/completions", {**body(i), "max_tokens": 256})
            check(status == 200 and r["usage"]["completion_tokens"] == 256, str(r))

        t0 = time.time()
        for i in range(8):
            whole(i)
        single_s = time.time() - t0
        threads = [threading.Thread(target=whole, args=(i,)) for i in range(8)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        multi_s = time.time() - t0
        print(f"measured (whole responses): 8 x 256 tokens, one client at a time {8 * 256 / single_s:.0f} tok/s, "
              f"8 concurrent clients {8 * 256 / multi_s:.0f} tok/s aggregate")


def scenario_errors(a):
    with Server(a.server, "--max-prompt-tokens", "64", "--max-tokens", "100", "--max-body-mb", "1") as s:
        cases = [
            ("/v1/completions", b"{not json", 400, None),
            ("/v1/completions", b"", 400, None),
            ("/v1/completions", b"[1, 2]", 400, None),
            ("/v1/completions", {"prompt": 5}, 400, "prompt"),
            ("/v1/completions", {"prompt": ""}, 400, "prompt"),
            ("/v1/completions", {"prompt": ["a", "b"]}, 400, "prompt"),
            ("/v1/completions", {"prompt": [300]}, 400, "prompt[0]"),
            ("/v1/completions", {"prompt": "x", "temperature": "hot"}, 400, "temperature"),
            ("/v1/completions", {"prompt": "x", "temperature": 5}, 400, "temperature"),
            ("/v1/completions", {"prompt": "x", "top_p": -1}, 400, "top_p"),
            ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
            ("/v1/completions", {"prompt": "x", "max_tokens": 101}, 400, "max_tokens"),
            ("/v1/completions", {"prompt": "x", "max_tokens": 1.5}, 400, "max_tokens"),
            ("/v1/completions", {"prompt": "x", "stop": [""]}, 400, "stop"),
            ("/v1/completions", {"prompt": "x", "stop": 3}, 400, "stop"),
            ("/v1/completions", {"prompt": "x", "stream": "yes"}, 400, "stream"),
            ("/v1/completions", {"prompt": "x", "n": 2}, 400, "n"),
            ("/v1/completions", {"prompt": "x", "seed": "s"}, 400, "seed"),
            ("/v1/completions", {"prompt": "x" * 100}, 400, "prompt"),
            ("/v1/completions", {"prompt": "x", "model": "gpt-4"}, 404, "model"),
            ("/v1/chat/completions", {}, 400, "messages"),
            ("/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
            ("/v1/chat/completions", {"messages": []}, 400, "messages"),
            ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
            ("/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages[0].content"),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
             "messages[0].content[0].type"),
        ]
        for path, body, want, param in cases:
            status, r = s.post(path, body)
            err = r.get("error") if isinstance(r, dict) else None
            check(status == want and isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]
                  and err.get("type") and err.get("param") == param,
                  f"{path} {body!r}: want {want} with param {param}, got {status} {r}")
        status, r = s.post("/v1/completions", {"prompt": "x", "model": "gpt-4"})
        check(r["error"]["code"] == "model_not_found", str(r))
        status, r = s.post("/v1/completions", {"prompt": "x" * 100})
        check(r["error"]["code"] == "context_length_exceeded" and "--max-prompt-tokens" in r["error"]["message"],
              str(r))
        # Routes and sizes refused by the HTTP layer, still in the error shape.
        status, r = s.get("/nope")
        check(status == 404 and "no route" in r["error"]["message"], str(r))
        c = s.connect()
        c.request("POST", "/v1/completions", body=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        check(resp.status == 413 and "too large" in json.loads(resp.read())["error"]["message"], "413")
        c.close()
        # Still serving.
        status, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 5})
        check(status == 200 and r["usage"]["completion_tokens"] == 5, str(r))


def scenario_limits(a):
    # --timeout: a request still running after it ends with 408 in the error shape.
    with Server(a.server, "--timeout", "0.5", "--max-tokens", "100000000") as s:
        t0 = time.time()
        status, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 100000000})
        check(status == 408 and r["error"]["code"] == "timeout" and time.time() - t0 < 10, f"{status} {r}")
        check(s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 5})[0] == 200, "short request after timeout")
    # --max-sessions 1 --max-queue 1: one running, one waiting, the third refused with 429.
    with Server(a.server, "--max-sessions", "1", "--max-queue", "1", "--max-tokens", "100000000") as s:
        running, _ = open_stream(s.port, {"prompt": PROMPT, "max_tokens": 100000000})
        waiting = threading.Thread(target=lambda: s.post("/v1/completions", {"prompt": "x", "max_tokens": 3}))
        waiting.start()
        deadline = time.time() + 10
        while s.health()["queued"] != 1:
            check(time.time() < deadline, f"the second request never queued: {s.health()}")
            time.sleep(0.02)
        status, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 3})
        check(status == 429 and r["error"]["code"] == "rate_limit_exceeded", f"{status} {r}")
        running.close()  # the running client leaves: the waiting request gets the slot and finishes
        waiting.join(30)
        check(not waiting.is_alive(), "the queued request never ran")


def open_stream(port, body):
    """A raw socket with a streaming request sent; returns (socket, first bytes read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps({**body, "stream": True}).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data)
    got = b""
    while got.count(b"data: ") < 3:
        chunk = sock.recv(65536)
        check(chunk, "the stream ended early: %r" % got)
        got += chunk
    return sock, got


def scenario_cancel(a):
    with Server(a.server, "--max-tokens", "100000000") as s:
        # A request that would run for a very long time; the client reads a few chunks and leaves.
        sock, got = open_stream(s.port, {"prompt": PROMPT, "max_tokens": 100000000, "temperature": 0})
        check(b"200 OK" in got.split(b"\r\n")[0], got[:100])
        sock.close()
        deadline = time.time() + 20
        while s.health()["active"] != 0:
            check(time.time() < deadline, f"the abandoned request is still running: {s.health()}")
            time.sleep(0.05)
        check(s.health()["stats"]["cancelled"] == 1, str(s.health()))
        check(re.search(r"cmpl-1 completion .* \| cancelled \|", s.log()), "no 'cancelled' log line:\n" + s.log())
        # The server keeps serving.
        status, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 20, "temperature": 0})
        check(status == 200 and r["usage"]["completion_tokens"] == 20, str(r))


def scenario_sigterm(a):
    s = Server(a.server, "--max-tokens", "100000000", "--shutdown-timeout", "10")
    try:
        long_sock, long_got = open_stream(s.port, {"prompt": PROMPT, "max_tokens": 100000000, "temperature": 0})
        short_sock, short_got = open_stream(s.port, {"prompt": "Fortune", "max_tokens": 100, "temperature": 0})
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # While draining, new requests are refused with 503 and the error shape.
        status, r = s.post("/v1/completions", {"prompt": "x"})
        check(status == 503 and r["error"]["code"] == "shutting_down", f"during shutdown: {status} {r}")

        def read_all(sock, got):
            sock.settimeout(30)
            while not got.endswith(b"0\r\n\r\n"):  # the chunked body's end
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            sock.close()
            return got.decode("utf-8", "replace")

        short = read_all(short_sock, short_got)
        long = read_all(long_sock, long_got)
        check('"finish_reason":"length"' in short and "data: [DONE]" in short,
              "the short request did not finish normally: " + short[-300:])
        check('"code":"shutting_down"' in long and "data: [DONE]" in long,
              "the long request was not ended with an error event: " + long[-300:])
        rc = s.stop()
        check(rc == 0, f"exit status {rc} after SIGTERM:\n{s.log()}")
        check("SIGTERM" in s.log() and "stopped" in s.log(), s.log())
    except BaseException:
        s.proc.kill()
        raise


def scenario_openai(a):
    try:
        import openai  # noqa: PLC0415 - optional
    except ImportError:
        print("SKIP: the openai package is not installed (pip install openai; .ci/run installs it)")
        return SKIP
    with Server(a.server) as s:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="unused", max_retries=0)
        model = client.models.list().data[0].id
        c = client.completions.create(model=model, prompt=PROMPT, max_tokens=40, temperature=0)
        want = generate(a.generate, PROMPT, 40, "--temp", "0")
        check(c.choices[0].text == want and c.usage.completion_tokens == 40, f"openai completion: {c}")
        text = "".join(ch.choices[0].text for ch in client.completions.create(
            model=model, prompt=PROMPT, max_tokens=40, temperature=0, stream=True) if ch.choices)
        check(text == want, f"openai completion stream: {text!r}")

        messages = [{"role": "user", "content": "Tell me a fortune."}]
        chat = client.chat.completions.create(model=model, messages=messages, max_tokens=40, temperature=0)
        reply = chat.choices[0].message.content
        status, raw = s.post("/v1/chat/completions", {"messages": messages, "max_tokens": 40, "temperature": 0})
        check(reply == raw["choices"][0]["message"]["content"], "openai chat differs from the raw request")
        text = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
            model=model, messages=messages, max_tokens=40, temperature=0, stream=True) if ch.choices)
        check(text == reply, f"openai chat stream: {text!r} != {reply!r}")

        try:
            client.completions.create(model=model, prompt=PROMPT, temperature=7)
            raise Failure("temperature 7 was accepted")
        except openai.BadRequestError as e:
            check("temperature" in str(e), str(e))
        try:
            client.completions.create(model="no-such-model", prompt=PROMPT)
            raise Failure("an unknown model was accepted")
        except openai.NotFoundError as e:
            check("no-such-model" in str(e), str(e))
        print(f"openai {openai.__version__}: completions, chat, streaming and errors as expected")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=[n[len("scenario_"):] for n in globals() if n.startswith("scenario_")])
    p.add_argument("--server", required=True)
    p.add_argument("--generate", required=True)
    a = p.parse_args()
    try:
        rc = globals()["scenario_" + a.scenario](a)
    except Failure as e:
        print(f"FAIL ({a.scenario}): {e}", file=sys.stderr)
        return 1
    if rc == SKIP:
        return SKIP
    print(f"ok: {a.scenario}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

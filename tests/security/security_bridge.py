#!/usr/bin/env python3
"""The attacks of issue #23 on the REST bridge, replayed against the real vdgx-bridge,
vdgx-broker and a real worker (vdgx-worker-test, testgen engine) on loopback sockets; each
scenario asserts that the attack fails. Standard library only (tests/bridge/bridge_e2e.py
provides the process stack).

    security_bridge.py SCENARIO     owners | auth | trickle | input | curve | sigterm | images
                                    | decodes | budget | framing
Exit 0 = pass, 77 = skipped, anything else = fail.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bridge"))
from bridge_e2e import BIN, Stack, check, free_port, jreq, request  # noqa: E402
from bridge_e2e import multipart as multipart_files  # noqa: E402


def keys_file(st, entries):
    """entries: [(secret, name, role)] -> path of a keys file."""
    path = os.path.join(st.tmp, "keys-%d.txt" % len(os.listdir(st.tmp)))
    with open(path, "w") as f:
        for secret, name, role in entries:
            f.write("%s %s role=%s\n" % (hashlib.sha256(secret.encode()).hexdigest(), name, role))
    return path


def bearer(secret):
    return {"Authorization": "Bearer " + secret}


def raw(port, data, timeout=3.0, source="127.0.0.1"):
    """Sends raw bytes, returns everything the server answered before it closed."""
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        out += b"<reset>"
    s.close()
    return out


def json_error(resp, status):
    """The raw response has this status and the project's JSON error shape."""
    head, _, body = resp.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 %d" % status), "status %d expected: %r" % (status, resp[:200]))
    check(b"application/json" in head.lower(), "JSON content type: %r" % head)
    err = json.loads(body)["error"]
    check(isinstance(err["code"], str) and isinstance(err["message"], str), "error shape: %r" % body)
    return head, err


# ---------------------------------------------------------------------------------------
# Per-client ownership: any API key could read every prompt, cancel or delete anyone's job,
# unload models and drain workers.

def t_owners(st):
    keys = keys_file(st, [("alice-secret", "alice", "user"), ("bob-secret", "bob", "user"),
                          ("ops-secret", "ops", "admin")])
    p = st.start_bridge(["--keys", keys])
    alice, bob, ops = bearer("alice-secret"), bearer("bob-secret"), bearer("ops-secret")
    _, _, job = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "alice's secret prompt",
                                               "steps": 2}, alice, expect=202)
    jid = job["id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, j = jreq(p, "GET", "/jobs/" + jid, headers=alice, expect=200)
        if j["state"] == "completed":
            break
        time.sleep(0.1)
    check(j["state"] == "completed", "alice's job completes")
    # cached for alice now; bob gets nothing from the cache or the broker
    for method, path in (("GET", "/jobs/" + jid), ("GET", "/v1/videos/" + jid),
                         ("GET", "/jobs/" + jid + "/download"), ("GET", "/v1/videos/" + jid + "/content"),
                         ("GET", "/jobs/" + jid + "/events"), ("POST", "/jobs/" + jid + "/cancel"),
                         ("DELETE", "/v1/videos/" + jid)):
        s, _, e = jreq(p, method, path, headers=bob)
        check(s == 404 and e["error"]["code"] == "not_found", "bob %s %s: %d %r" % (method, path, s, e))
    _, _, page = jreq(p, "GET", "/v1/videos", headers=bob, expect=200)
    check(all(d["id"] != jid for d in page["data"]), "bob's list holds no job of alice")
    check("alice" not in json.dumps(page), "no prompt of alice in bob's list")
    # operators' routes need admin
    for path, body in (("/unload", {"model": "testgen"}), ("/drain", {"model": "testgen"})):
        s, _, e = jreq(p, "POST", path, body, bob)
        check(s == 403 and e["error"]["code"] == "forbidden", "bob %s: %d" % (path, s))
    s, _, _ = request(p, "GET", "/metrics", headers=bob)
    check(s == 403, "bob /metrics: %d" % s)
    _, _, info = jreq(p, "GET", "/info", headers=bob, expect=200)
    check(info["workers"] == [], "worker hosts are for admins")
    # the admin sees everything and may unload; alice keeps control of her own job
    _, _, j = jreq(p, "GET", "/jobs/" + jid, headers=ops, expect=200)
    check(j["id"] == jid, "the admin reads any job")
    jreq(p, "POST", "/unload", {"model": "testgen"}, ops, expect=200)
    _, _, info = jreq(p, "GET", "/info", headers=ops, expect=200)
    check(len(info["workers"]) >= 1, "the admin sees the workers")
    jreq(p, "DELETE", "/v1/videos/" + jid, headers=alice, expect=200)
    # without keys (the loopback demo) the bridge behaves as before: the operator
    p2 = st.start_bridge([])
    _, _, job2 = jreq(p2, "POST", "/generate", {"model": "testgen", "prompt": "demo", "steps": 2}, expect=202)
    jreq(p2, "GET", "/jobs/" + job2["id"], expect=200)
    jreq(p2, "POST", "/unload", {"model": "testgen"}, expect=200)


# ---------------------------------------------------------------------------------------
# Wrong API keys were not rate-limited (200 guesses, 200 x 401).

def t_auth(st):
    keys = keys_file(st, [("right-secret", "ci", "user")])
    p = st.start_bridge(["--keys", keys])
    statuses = []
    for i in range(200):
        s, h, _ = request(p, "GET", "/queue/status", headers=bearer("guess-%d" % i))
        statuses.append(s)
        if s == 429:
            check(int(h["retry-after"]) >= 1, "Retry-After on 429")
    check(statuses.count(401) <= 10 and statuses.count(429) >= 190, "guesses limited: %d x 401, %d x 429"
          % (statuses.count(401), statuses.count(429)))
    # while locked out, the address gets no answer about any key (no oracle) ...
    s, _, e = jreq(p, "GET", "/queue/status", headers=bearer("right-secret"))
    check(s == 429 and e["error"]["code"] == "rate_limited", "locked out: %d" % s)
    # ... but another address is not affected
    resp = raw(p, b"GET /queue/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer right-secret\r\n"
                  b"Connection: close\r\n\r\n", source="127.0.0.2")
    check(resp.startswith(b"HTTP/1.1 200"), "another address: %r" % resp[:80])


# ---------------------------------------------------------------------------------------
# 64 connections that each send a byte every 10 s were never closed and locked out every
# other client of that IP; connections over the per-IP limit got a TCP reset.
# The same attack at a smaller scale (8 connections, a byte every 0.4 s, a 1.5 s header
# deadline), so the test takes seconds, not minutes.

def t_trickle(st):
    p = st.start_bridge(["--per-ip-limit", "8", "--header-timeout-ms", "1500", "--min-body-rate", "1024"])
    tricklers = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", p))
        s.sendall(b"GET /queue/status HTTP/1.1\r\n")
        tricklers.append(s)
    body = socket.create_connection(("127.0.0.1", p))
    body.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{")
    time.sleep(0.3)
    # the ninth connection from the address: an HTTP 429 with Retry-After, not a reset
    head, err = json_error(raw(p, b"GET /queue/status HTTP/1.1\r\nHost: x\r\n\r\n"), 429)
    check(b"retry-after:" in head.lower() and err["code"] == "too_many_connections", "429 shape: %r" % head)
    # keep trickling: every slow connection is closed within the deadline
    t0 = time.time()
    open_ = list(tricklers) + [body]
    closed = set()
    while open_ and time.time() - t0 < 6:
        for s in list(open_):
            try:
                s.sendall(b"X")
                s.setblocking(False)
                if s.recv(1) == b"":
                    closed.add(s)
                    open_.remove(s)
            except (BlockingIOError, ):
                pass
            except OSError:
                closed.add(s)
                open_.remove(s)
            finally:
                s.setblocking(True)
        time.sleep(0.4)
    check(not open_, "%d slow connections still open after %.1f s" % (len(open_), time.time() - t0))
    check(time.time() - t0 < 4, "closed within the header deadline (%.1f s)" % (time.time() - t0))
    for s in tricklers + [body]:
        s.close()
    jreq(p, "GET", "/queue/status", expect=200)


# ---------------------------------------------------------------------------------------
# /jobs/ID%00junk answered for ID; a multipart prompt a\0b was stored as a; duplicate form
# fields were accepted (the JSON path rejects both). And every error is the JSON shape.

def multipart(fields, boundary="SeCuRiTy"):
    out = b""
    for name, value in fields:
        out += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (
            boundary.encode(), name.encode(), value)
    return out + b"--%s--\r\n" % boundary.encode(), "multipart/form-data; boundary=" + boundary


def t_input(st):
    p = st.start_bridge([])
    _, _, job = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "x", "steps": 2}, expect=202)
    jid = job["id"]
    jreq(p, "GET", "/jobs/" + jid, expect=200)
    for path in ("/jobs/%s%%00junk" % jid, "/v1/videos/%s%%00" % jid, "/jobs/%s%%0a" % jid,
                 "/jobs/%s/download%%00" % jid, "/v1/videos?after=%00", "/v1/videos?order=asc%01"):
        s, _, e = jreq(p, "GET", path)
        check(s == 400 and e["error"]["code"] in ("invalid_path", "invalid_query"), "%s: %d %r" % (path, s, e))
    for fields in ([("model", b"testgen"), ("prompt", b"a\0b")],
                   [("model", b"testgen"), ("prompt", b"a\x07b")],
                   [("model", b"testgen"), ("prompt", b"one"), ("prompt", b"two")],
                   [("model", b"testgen"), ("model", b"testgen"), ("prompt", b"x")]):
        body, ctype = multipart(fields)
        s, _, e = jreq(p, "POST", "/v1/videos", body, {"Content-Type": ctype})
        check(s == 400 and e["error"]["code"] == "invalid_form" and e["error"]["field"] in ("prompt", "model"),
              "form %r: %d %r" % (fields, s, e))
    for body in (b"model=testgen&prompt=a%00b", b"model=testgen&prompt=a&prompt=b"):
        s, _, e = jreq(p, "POST", "/v1/videos", body, {"Content-Type": "application/x-www-form-urlencoded"})
        check(s == 400 and e["error"]["code"] == "invalid_form", "urlencoded %r: %d" % (body, s))
    # the JSON path refuses the same
    s, _, _ = jreq(p, "POST", "/v1/videos", b'{"model":"testgen","prompt":"a\\u0000b"}',
                   {"Content-Type": "application/json"})
    check(s in (400, 422), "JSON NUL: %d" % s)
    s, _, _ = jreq(p, "POST", "/v1/videos", b'{"model":"testgen","prompt":"a","prompt":"b"}',
                   {"Content-Type": "application/json"})
    check(s == 400, "JSON duplicate: %d" % s)
    # a valid form still works
    body, ctype = multipart([("model", b"testgen"), ("prompt", b"a form\nwith a newline"), ("seconds", b"1")])
    jreq(p, "POST", "/v1/videos", body, {"Content-Type": ctype}, expect=200)
    # errors the bridge answers itself, from its HTTP layer too, are the JSON shape
    json_error(raw(p, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"), 431)
    json_error(raw(p, b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 404)
    json_error(raw(p, b"PUT /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405)


# ---------------------------------------------------------------------------------------
# The bridge had no CURVE client options and could not talk to a CURVE broker at all.

def mkcert(st, name, *args):
    """NAME.key + NAME.key_secret (and the allowed copy), as vdgx-mkcert names them; the
    secret file is what --curve-cert takes."""
    path = os.path.join(st.tmp, name)
    subprocess.run([os.path.join(BIN, "vdgx-mkcert")] + list(args) + [path, os.path.join(st.tmp, "curve", "allowed")],
                   check=True, stdout=subprocess.DEVNULL)
    return path + ".key_secret"


def t_curve(st):
    # a second stack member: a CURVE broker with a CURVE worker, and the bridge over CURVE
    curve = os.path.join(st.tmp, "curve")
    os.makedirs(os.path.join(curve, "allowed"))
    bridge_cert = mkcert(st, "bridge", "--role", "admin", "--name", "bridge")
    worker_cert = mkcert(st, "worker", "--role", "worker", "--models", "testgen")
    user_cert = mkcert(st, "someone", "--role", "user")
    bport, eport = free_port(), free_port()
    bep, eep = "tcp://127.0.0.1:%d" % bport, "tcp://127.0.0.1:%d" % eport
    st.spawn("cbroker", [os.path.join(BIN, "vdgx-broker"), "--bind", bep, "--events", eep, "--curve", curve,
                         "--data", os.path.join(st.tmp, "cbroker"), "--heartbeat-ms", "200", "--model", "testgen"])
    server = os.path.join(curve, "broker.key")
    for _ in range(100):
        if os.path.exists(server) and os.path.getsize(server) > 0:
            break
        time.sleep(0.05)
    st.spawn("cworker", [os.path.join(BIN, "vdgx-worker-test"), "--model", "testgen", "--broker", bep,
                         "--data", os.path.join(st.tmp, "cworker"), "--heartbeat-ms", "200",
                         "--curve-server-key", server, "--curve-cert", worker_cert])
    keys = keys_file(st, [("alice-secret", "alice", "user")])

    def bridge(cert):
        port = free_port()
        b = st.spawn("cbridge", [os.path.join(BIN, "vdgx-bridge"), "--listen", "127.0.0.1:%d" % port,
                                 "--broker", bep, "--events", eep, "--keys", keys, "--request-timeout-ms", "1500",
                                 "--curve-server-key", server, "--curve-cert", cert])
        st.bridges.append(b)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("bridge did not start")

    p = bridge(bridge_cert)
    alice = bearer("alice-secret")
    deadline = time.time() + 20
    while time.time() < deadline:
        s, _, _ = request(p, "GET", "/queue/status", headers=alice)
        if s == 200:
            break
        time.sleep(0.2)
    check(s == 200, "the bridge talks CURVE to the broker: %d" % s)
    _, _, job = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "over curve", "steps": 2}, alice,
                     expect=202)
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, j = jreq(p, "GET", "/jobs/" + job["id"], headers=alice, expect=200)
        if j["state"] in ("completed", "failed"):
            break
        time.sleep(0.1)
    check(j["state"] == "completed", "job over CURVE: %r" % j)
    # a bridge whose key the broker does not know gets no answer: 503, not a hang
    stranger = os.path.join(st.tmp, "stranger")
    subprocess.run([os.path.join(BIN, "vdgx-mkcert"), stranger], check=True, stdout=subprocess.DEVNULL)
    stranger += ".key_secret"
    p2 = bridge(stranger)
    t0 = time.time()
    s, _, _ = request(p2, "GET", "/queue/status", headers=alice)
    check(s == 503 and time.time() - t0 < 5, "unknown key: %d after %.1f s" % (s, time.time() - t0))
    # a bridge with a user key cannot act for its API keys (the broker wants admin)
    p3 = bridge(user_cert)
    s, _, e = jreq(p3, "GET", "/v1/videos", headers=alice)
    check(s == 403, "a user-role bridge key: %d %r" % (s, e))


# ---------------------------------------------------------------------------------------
# In one start-up timing the bridge's broker actor blocked for ever in a send and ignored
# SIGTERM: SIGTERM must end it within a second, at any moment.

def t_sigterm(st):
    # a broker address where nothing answers (a silent listener: connects, never replies)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    dead = "tcp://127.0.0.1:%d" % silent.getsockname()[1]
    worst = 0.0
    for delay in (0.0, 0.02, 0.1, 0.3, 1.0):
        port = free_port()
        b = st.spawn("tbridge", [os.path.join(BIN, "vdgx-bridge"), "--listen", "127.0.0.1:%d" % port,
                                 "--broker", dead, "--events", dead, "--request-timeout-ms", "60000"])
        time.sleep(delay)
        conns = []
        if delay >= 0.3:
            # requests in flight: broker calls queued, an event stream open, a download
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            for path in ("/jobs/abc", "/v1/videos", "/jobs/abc/events", "/jobs/abc/download", "/info"):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
                conns.append(s)
            time.sleep(0.2)
        t0 = time.time()
        b.send_signal(signal.SIGTERM)
        try:
            b.wait(timeout=5)
        except subprocess.TimeoutExpired:
            b.kill()
            b.wait()
        took = time.time() - t0
        worst = max(worst, took)
        check(took < 1.0, "SIGTERM after %.2f s: exited after %.2f s" % (delay, took))
        for s in conns:
            s.close()
    silent.close()
    print("sigterm: slowest stop %.2f s" % worst)


# ---------------------------------------------------------------------------------------
# Image uploads (input_reference / image): decompression bombs, lying headers, oversized
# bodies and parallel uploads. Refused by the header before anything is decoded.

def t_images(st):
    import base64
    import concurrent.futures as cf
    p = st.start_bridge([])

    def ffmpeg_png(size):
        path = os.path.join(st.tmp, "solid-%s.png" % size)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=" + size,
                        "-frames:v", "1", path], check=True, timeout=60)
        return open(path, "rb").read()

    def post(img, path="/generate", field="image"):
        body = {"model": "testgen", "prompt": "x", field: "data:image/png;base64," + base64.b64encode(img).decode()}
        t0 = time.time()
        s, _, e = jreq(p, "POST", path, body)
        return s, (e or {}).get("error", {}), time.time() - t0

    # A real PNG bomb: 6000x6000 of one colour is a small file (zlib) but 108 MB of pixels.
    bomb = ffmpeg_png("6000x6000")
    s, err, took = post(bomb)
    check(s == 413 and err["field"] == "image" and "6000x6000" in err["message"] and took < 2,
          "PNG bomb (%d bytes): %d %r in %.2f s" % (len(bomb), s, err, took))
    # Headers that declare the largest canvases each format allows.
    small = ffmpeg_png("16x16")
    png = bytearray(small)
    png[16:24] = b"\x7f\xff\xff\xff\x7f\xff\xff\xff"
    webp = b"RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff"
    jpeg = (b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
            b"\xff\xd9")
    for name, img in (("png", bytes(png)), ("webp", webp), ("jpeg", jpeg)):
        s, err, took = post(img, "/v1/videos", "input_reference")
        check(s == 413 and err["field"] == "input_reference" and took < 2, "%s canvas bomb: %d %r" % (name, s, err))
    # A header that lies (says 4096x4096, holds 16x16 of data): the strict decoder refuses it.
    liar = bytearray(small)
    liar[16:24] = b"\x00\x00\x10\x00\x00\x00\x10\x00"
    s, err, _ = post(bytes(liar))
    check(s == 422 and err["code"] == "invalid_image", "lying header: %d %r" % (s, err))
    # A body over the submit cap is refused from its Content-Length, unread.
    resp = raw(p, b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\nConnection: close\r\n\r\n{")
    json_error(resp, 413)
    # Parallel near-limit uploads: every one answered, the bridge stays up.
    big = small[:33] + os.urandom(3 * 1024 * 1024)
    with cf.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: post(big)[0], range(8)))
    check(all(c == 422 for c in codes), "parallel 3 MiB uploads all refused: %r" % codes)
    jreq(p, "GET", "/health", expect=200)
    _, _, lst = jreq(p, "GET", "/v1/videos?limit=100", expect=200)
    check(len(lst["data"]) == 0, "nothing was queued")


# ---------------------------------------------------------------------------------------
# Image decodes had no bound: many simultaneous uploads near 16 Mpx each took a decode
# (48 MiB of pixels, CPU) in every HTTP thread at once. With --decode-limit 1, uploads that
# find the slot taken get 503 + Retry-After at once (--decode-wait-ms 0), the others are
# accepted, and the bridge keeps answering; with a wait, they queue for the slot instead.

def png_file(width, height, rows):
    """A valid RGB PNG; rows(y) gives each row's width * 3 bytes."""
    raw = b"".join(b"\x00" + rows(y) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def big_png():
    """4096x4096 (the 16 Mpx limit): a small file, 48 MiB of pixels to decode."""
    base = bytes(range(256)) * 50
    return png_file(4096, 4096, lambda y: base[y % 256: y % 256 + 4096 * 3])


def t_decodes(st):
    import concurrent.futures as cf
    png = big_png()
    body, hdrs = multipart_files({"model": "i2v", "prompt": "x"}, {"image": ("big.png", "image/png", png)})
    p = st.start_bridge(["--threads", "8", "--decode-limit", "1", "--decode-wait-ms", "0"])
    jreq(p, "GET", "/health", expect=200)
    busy, accepted, slowest_health = [], 0, 0.0
    for _ in range(3):
        with cf.ThreadPoolExecutor(5) as ex:
            # a little apart: a thread that is decoding accepts no connection, so the next
            # upload lands on another thread (all at once, one thread may accept them all)
            futures = []
            for _ in range(5):
                futures.append(ex.submit(request, p, "POST", "/generate", body, hdrs))
                time.sleep(0.03)
            t0 = time.time()
            s, _, _ = request(p, "GET", "/health")
            slowest_health = max(slowest_health, time.time() - t0)
            check(s == 200, "health during uploads: %d" % s)
            results = [f.result() for f in futures]
        for s, h, data in results:
            check(s in (202, 503), "an upload: %d %r" % (s, data[:200]))
            if s == 503:
                busy.append((h, json.loads(data)["error"]))
            accepted += s == 202
        if busy:
            break
    check(busy, "5 uploads at once against one decode slot: none found it taken")
    for h, err in busy:
        check(int(h["retry-after"]) >= 1 and err["code"] == "unavailable" and err["field"] == "image",
              "503 shape: %r %r" % (h, err))
    check(accepted >= 1, "uploads that got the slot are accepted")
    check(slowest_health < 5, "the bridge answers while decoding (%.2f s)" % slowest_health)
    _, _, metrics = request(p, "GET", "/metrics")
    text = metrics.decode()
    line = [ln for ln in text.splitlines() if ln.startswith('vdgx_bridge_image_decodes_total{outcome="busy"}')]
    check(line and float(line[0].split()[-1]) == len(busy), "busy decodes counted: %r" % line)
    # with a wait, uploads queue for the slot instead: all accepted
    p2 = st.start_bridge(["--threads", "4", "--decode-limit", "1", "--decode-wait-ms", "20000"])
    with cf.ThreadPoolExecutor(3) as ex:
        codes = [r[0] for r in ex.map(lambda _: request(p2, "POST", "/generate", body, hdrs), range(3))]
    check(codes == [202] * 3, "uploads that wait for the slot: %r" % codes)
    print("decodes: %d x 503, %d accepted, health answered within %.2f s" % (len(busy), accepted, slowest_health))


# ---------------------------------------------------------------------------------------
# The broker's limits per client, through the bridge: each API key is its own client at the
# broker. Over the owner's cap of queued request bytes: 413 with Retry-After; over its byte
# budget: 429 with Retry-After; another key is still served.

def t_budget(st):
    keys = keys_file(st, [("carol-secret", "carol", "user"), ("dave-secret", "dave", "user")])
    p = st.start_bridge(["--keys", keys])
    rnd = os.urandom(700 * 3 * 1000)
    img = png_file(1000, 700, lambda y: rnd[y * 3000: (y + 1) * 3000])     # ~2.1 MB: no zlib gain
    body = {"model": "i2v", "prompt": "x", "image": "data:image/png;base64," + base64.b64encode(img).decode()}
    got = []
    for _ in range(5):
        s, h, e = jreq(p, "POST", "/generate", body, bearer("carol-secret"))
        got.append((s, h, e))
    codes = [g[0] for g in got]
    check(codes == [202, 202, 413, 413, 429], "carol's submits: %r %r" % (codes, [g[2] for g in got]))
    for s, h, e in got[2:]:
        check(int(h["retry-after"]) >= 1, "Retry-After on %d" % s)
    check(got[2][2]["error"]["code"] == "too_large" and "cap" in got[2][2]["error"]["message"], "quota: %r" % got[2][2])
    check(got[4][2]["error"]["code"] == "queue_full" and "budget" in got[4][2]["error"]["message"], "budget: %r" % got[4][2])
    jreq(p, "POST", "/generate", body, bearer("dave-secret"), expect=202)


# ---------------------------------------------------------------------------------------
# Requests that libmicrohttpd refused itself, with its short HTML bodies (or a bare close):
# an unsupported HTTP version, broken chunked framing, headers past its connection memory,
# a request line that is not HTTP. The front door (vdgx_front) now answers each in the
# JSON error shape, on fresh and on kept-alive or pipelined connections.

def read_response(f):
    """One response from a socket's file (s.makefile("rb")): (status, head, body)."""
    status = f.readline()
    check(status.startswith(b"HTTP/1.1 "), "a response: %r" % status)
    head, length = status, 0
    while True:
        line = f.readline()
        check(line, "connection closed inside a head")
        head += line
        if line == b"\r\n":
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(status.split(b" ")[1]), head, f.read(length)


def t_framing(st):
    p = st.start_bridge([])
    host = b"Host: x\r\n"
    post = b"POST /generate HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
    chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
    cases = [
        ("HTTP/2.0", b"GET /health HTTP/2.0\r\n" + host + b"\r\n", 505, "http_version_not_supported"),
        ("HTTP/9.9", b"GET /health HTTP/9.9\r\n\r\n", 505, "http_version_not_supported"),
        ("HTTP/0.9", b"GET /health HTTP/0.9\r\n\r\n", 505, "http_version_not_supported"),
        ("chunk size not hex", chunked + b"zz\r\n{}\r\n0\r\n\r\n", 400, "invalid_chunk"),
        ("no CRLF after chunk data", chunked + b"2\r\n{}XX0\r\n\r\n", 400, "invalid_chunk"),
        ("oversized chunk size", chunked + b"fffffffffffffffffff\r\n", 400, "invalid_chunk"),
        ("space in chunk size", chunked + b"2 \r\n{}\r\n0\r\n\r\n", 400, "invalid_chunk"),
        ("bad trailer", chunked + b"2\r\n{}\r\n0\r\nno colon\r\n\r\n", 400, "invalid_chunk"),
        ("20 KiB header", b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 20 * 1024 + b"\r\n\r\n", 431,
         "headers_too_large"),
        ("80 KiB header", b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 80 * 1024 + b"\r\n\r\n", 431,
         "headers_too_large"),
        ("150 header lines", b"GET / HTTP/1.1\r\n" + host + b"a:\r\n" * 150 + b"\r\n", 431, "headers_too_large"),
        ("20 KiB path", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414, "uri_too_long"),
        ("garbage request line", b"GARBAGE\r\n\r\n", 400, "invalid_request_line"),
        ("TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400, "invalid_request_line"),
        ("NUL in the path", b"GET /a\x00b HTTP/1.1\r\n" + host + b"\r\n", 400, "invalid_request_line"),
        ("control byte in the path", b"GET /a\x07 HTTP/1.1\r\n" + host + b"\r\n", 400, "invalid_request_line"),
        ("no Host on HTTP/1.1", b"GET /health HTTP/1.1\r\n\r\n", 400, "invalid_header"),
        ("two Host headers", b"GET /health HTTP/1.1\r\n" + host + host + b"\r\n", 400, "invalid_header"),
        ("folded header", b"GET /health HTTP/1.1\r\n" + host + b"X: a\r\n b\r\n\r\n", 400, "invalid_header"),
        ("NUL in a header", b"GET /health HTTP/1.1\r\n" + host + b"X: a\x00b\r\n\r\n", 400, "invalid_header"),
        ("bare LF", b"GET /health HTTP/1.1\n" + host + b"\n", 400, "invalid_request_line"),
        ("two Content-Length", post + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "invalid_header"),
        ("Content-Length not a number", post + b"Content-Length: 2x\r\n\r\n{}", 400, "invalid_header"),
        ("Content-Length and chunked", post + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400,
         "invalid_header"),
        ("Content-Length past 64 bits", post + b"Content-Length: 99999999999999999999999\r\n\r\n", 413, "too_large"),
        ("Transfer-Encoding gzip", post + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "unsupported_transfer_encoding"),
    ]
    for name, data, status, code in cases:
        head, err = json_error(raw(p, data), status)
        check(err["code"] == code, "%s: code %s, expected %s" % (name, err["code"], code))
        check(b"connection: close" in head.lower(), "%s: Connection: close" % name)
    # A kept-alive connection: a good request, then a bad one (refused in JSON, closed).
    for bad, status in ((b"GET /health HTTP/2.0\r\n" + host + b"\r\n", 505),
                        (chunked + b"2\r\n{}\r\nxyz\r\n", 400)):
        s = socket.create_connection(("127.0.0.1", p), timeout=5)
        f = s.makefile("rb")
        s.sendall(b"GET /health HTTP/1.1\r\n" + host + b"\r\n")
        code, _, _ = read_response(f)
        check(code == 200, "kept-alive: the good request first: %d" % code)
        s.sendall(bad)
        json_error(f.read(), status)
        s.close()
    # Pipelined: answered in order, then the bad one in JSON after them.
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\n" + host + b"\r\n" + b"GET /openapi.json HTTP/1.1\r\n" + host + b"\r\n"
              + b"HEAD /health HTTP/1.1\r\n" + host + b"\r\n" + b"GET /health HTTP/1.1\r\nX: a\x7f\r\n\r\n")
    f = s.makefile("rb")
    answers = [read_response(f) for _ in range(2)]
    check([a[0] for a in answers] == [200, 200] and b"openapi" in answers[1][2], "pipelined answers in order")
    status = f.readline()
    check(status.startswith(b"HTTP/1.1 200 "), "the HEAD answer third: %r" % status)
    while f.readline() != b"\r\n":
        pass
    json_error(f.read(), 400)
    s.close()
    # A streamed download still arrives whole through the front (Range too).
    _, _, job = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "x", "steps": 2}, expect=202)
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, j = jreq(p, "GET", "/jobs/" + job["id"], expect=200)
        if j["state"] == "completed":
            break
        time.sleep(0.1)
    s, h, video = request(p, "GET", "/jobs/%s/download" % job["id"])
    check(s == 200 and len(video) == int(h["content-length"]) > 0, "download: %d, %d bytes" % (s, len(video)))
    s, h, part = request(p, "GET", "/jobs/%s/download" % job["id"], headers={"Range": "bytes=10-19"})
    check(s == 206 and part == video[10:20], "range through the front: %d" % s)
    # The refusals are counted, and the bridge is still up.
    status, _, metrics = request(p, "GET", "/metrics")
    check(status == 200 and b'route="front",code="505"' in metrics, "front refusals in /metrics")
    jreq(p, "GET", "/health", expect=200)


# Broker flags a scenario needs (models without workers keep their jobs queued).
BROKER_ARGS = {"decodes": ["--model", "i2v"],
               "budget": ["--model", "i2v", "--peer-rate", "128K", "--peer-burst", "9M", "--owner-queued-max", "5M"]}

SCENARIOS = {"images": t_images, "owners": t_owners, "auth": t_auth, "trickle": t_trickle, "input": t_input, "curve": t_curve,
             "sigterm": t_sigterm, "decodes": t_decodes, "budget": t_budget, "framing": t_framing}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    name = sys.argv[1]
    st = Stack([], broker_args=BROKER_ARGS.get(name, []))
    ok = False
    try:
        SCENARIOS[name](st)
        ok = True
        print("security bridge %s: OK" % name)
        return 0
    finally:
        st.close(keep=not ok)


if __name__ == "__main__":
    sys.exit(main())

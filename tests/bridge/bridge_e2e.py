#!/usr/bin/env python3
"""End-to-end tests of vdgx-bridge against the real vdgx-broker and a real worker running
the test engine (vdgx-worker-test --model testgen). Standard library only.

    bridge_e2e.py SCENARIO      routes | download | events | videos | paging | matrix |
                                auth | openapi | promtool | sdk | broker_down
Exit 0 = pass, 77 = skipped (a tool is missing), anything else = fail.
"""
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("VDGX_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
BIN = os.path.join(BUILD, "bin")
SKIP = 77


def free_port():
    """A free TCP port on 127.0.0.1 for a program that must be given one: chosen at random
    below the kernel's ephemeral range (32768+). A port from bind(0) lies in that range,
    where any outgoing connection on the machine can take it between this choice and the
    program's own bind ("Address already in use" on a busy machine). Where the program can
    be told port 0 or an ipc:// endpoint, do that instead (start_bridge, Stack)."""
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port below 32000")


def bridge_env():
    """The environment for a bridge whose port is read from its log (bridge.listen is logged
    at info)."""
    level = os.environ.get("VDGX_LOG_LEVEL", "info").lower()
    return dict(os.environ, VDGX_LOG_LEVEL=level if level in ("info", "debug") else "info")


def bridge_port(proc, log, timeout=60):
    """The port of a bridge started with --listen 127.0.0.1:0 (the kernel picks a free one
    when the bridge binds, so no other process can hold it), read from its bridge.listen
    log line; waits until it accepts a connection."""
    deadline = time.time() + timeout
    port = None
    while time.time() < deadline:
        if port is None:
            m = re.search(r"bridge\.listen .*?\bport=(\d+)", open(log, errors="replace").read())
            port = int(m.group(1)) if m else None
        if port is not None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError("vdgx-bridge exited with %d: %s" % (proc.returncode, open(log, errors="replace").read()[-2000:]))
        time.sleep(0.05)
    raise RuntimeError("vdgx-bridge did not start in %d s" % timeout)


class Stack:
    """Broker + one testgen worker + a bridge, on loopback ports, in a temp dir."""

    def __init__(self, bridge_args=(), worker=True, broker_args=()):
        self.tmp = tempfile.mkdtemp(prefix="vdgx-bridge-e2e-")
        self.procs = []
        # Endpoints in our own temp dir: nothing else can take them, and a restarted broker
        # binds them again.
        self.broker_ep = "ipc://%s/broker.ipc" % self.tmp
        self.events_ep = "ipc://%s/events.ipc" % self.tmp
        self.logs = []
        self.broker = self.spawn("broker", [os.path.join(BIN, "vdgx-broker"), "--bind", self.broker_ep,
                                            "--events", self.events_ep, "--data", os.path.join(self.tmp, "broker"),
                                            "--heartbeat-ms", "200", "--model", "testgen"] + list(broker_args))
        if worker:
            self.spawn("worker", [os.path.join(BIN, "vdgx-worker-test"), "--model", "testgen",
                                  "--broker", self.broker_ep, "--data", os.path.join(self.tmp, "worker"),
                                  "--heartbeat-ms", "200"])
        self.bridges = []
        self.bad_exit = None
        self.port = self.start_bridge(list(bridge_args))

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.tmp, "%s-%d.log" % (name, len(self.procs))), "w")
        self.logs.append(log.name)
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def start_bridge(self, args):
        p = self.spawn("bridge", [os.path.join(BIN, "vdgx-bridge"), "--listen", "127.0.0.1:0",
                                  "--broker", self.broker_ep, "--events", self.events_ep,
                                  "--request-timeout-ms", "3000"] + args, env=bridge_env())
        self.bridges.append(p)
        return bridge_port(p, self.logs[-1])

    def close(self, keep=False):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep:
            # a clean stop exits 0 (under sanitizers a leak or an error makes it non-zero)
            for b in self.bridges:
                if b.returncode != 0:
                    keep = True
                    self.bad_exit = "vdgx-bridge exited with %d" % b.returncode
        if keep:
            for name in self.logs:
                sys.stderr.write("----- %s -----\n" % name)
                sys.stderr.write(open(name, errors="replace").read()[-6000:])
        shutil.rmtree(self.tmp, ignore_errors=True)


def request(port, method, path, body=None, headers=None, timeout=20):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def jreq(port, method, path, body=None, headers=None, expect=None):
    status, hdrs, data = request(port, method, path, body, headers)
    if expect is not None and status != expect:
        raise AssertionError("%s %s: expected %d, got %d: %r" % (method, path, expect, status, data[:300]))
    try:
        obj = json.loads(data) if data else None
    except ValueError:
        raise AssertionError("%s %s: not JSON: %r" % (method, path, data[:200]))
    return status, hdrs, obj


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_job(port, job_id, states=("completed", "failed", "cancelled", "expired"), timeout=60, prefix="/jobs/"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, _, job = jreq(port, "GET", prefix + job_id, expect=200)
        state = job.get("state") or job.get("status")
        if state in states:
            return job
        time.sleep(0.05)
    raise AssertionError("job %s did not finish: %r" % (job_id, job))


def submit(port, **fields):
    body = {"model": "testgen", "prompt": "a red fox", "seed": 7}
    body.update(fields)
    _, hdrs, obj = jreq(port, "POST", "/generate", body, expect=202)
    check(hdrs.get("location") == "/jobs/" + obj["id"], "Location header: %r" % hdrs)
    return obj["id"]


# ------------------------------------------------------------------------------------------
# Scenarios


def t_routes(st):
    p = st.port
    _, _, root = jreq(p, "GET", "/", expect=200)
    check("/v1/videos" in json.dumps(root), "root lists routes")
    _, _, h = jreq(p, "GET", "/health", expect=200)
    check(h == {"status": "ok"}, "health body")
    status, _, ready = jreq(p, "GET", "/ready")
    check(status in (200, 503) and "models" in ready, "ready shape %r" % ready)
    job_id = submit(p, width=64, height=48, frames=8, steps=2)
    _, _, job = jreq(p, "GET", "/jobs/" + job_id, expect=200)
    check(job["id"] == job_id and job["model"] == "testgen", "job json")
    job = wait_job(p, job_id)
    check(job["state"] == "completed", "job completed: %r" % job)
    check(job["result"]["width"] == 64 and job["result"]["frames"] == 8, "result info %r" % job["result"])
    # the worker is warm now
    _, _, ready = jreq(p, "GET", "/ready", expect=200)
    check(ready["ready"] is True and ready["models"]["testgen"]["ready"] is True, "ready after a job: %r" % ready)
    _, _, info = jreq(p, "GET", "/info", expect=200)
    check(any(m["name"] == "testgen" for m in info["models"]), "info models %r" % info["models"])
    check(len(info["workers"]) == 1 and info["workers"][0]["service"] == "testgen", "info workers")
    check(info["broker"]["version"] == "VDGX/1" and "testgen" in info["memory"], "info broker/memory")
    _, _, q = jreq(p, "GET", "/queue/status", expect=200)
    check(q["queued"] == 0 and q["models"][0]["model"] == "testgen", "queue %r" % q)
    # a queued job shows in the queue: a slow one blocks the only worker
    slow = submit(p, prompt="slow sleep_ms=150", steps=6)
    waiting = submit(p, prompt="second")
    _, _, q = jreq(p, "GET", "/queue/status", expect=200)
    check(q["queued"] + q["running"] >= 1, "queue counts %r" % q)
    wait_job(p, slow)
    wait_job(p, waiting)
    # idempotency: same key, same job
    a = submit(p, idempotency_key="k-1", prompt="idem")
    b = submit(p, idempotency_key="k-1", prompt="idem")
    check(a == b, "idempotent submit")
    # header form of the key
    _, _, o1 = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "hdr"}, {"Idempotency-Key": "h-1"}, expect=202)
    _, _, o2 = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "hdr"}, {"Idempotency-Key": "h-1"}, expect=202)
    check(o1["id"] == o2["id"], "Idempotency-Key header")
    # unknown model, engine-side validation failure
    s, _, e = jreq(p, "POST", "/generate", {"model": "nosuch", "prompt": "x"})
    check(s == 422 and e["error"]["field"] == "model", "unknown model: %d %r" % (s, e))
    failed = submit(p, prompt="boom fail=error")
    job = wait_job(p, failed)
    check(job["state"] == "failed" and job["error"]["code"], "failing job %r" % job)
    s, _, e = jreq(p, "GET", "/jobs/%s/download" % failed)
    check(s == 409, "download of a failed job: %d" % s)
    # unload
    _, _, u = jreq(p, "POST", "/unload", {"model": "testgen"}, expect=200)
    check(u["model"] == "testgen" and u["workers"] >= 0, "unload %r" % u)
    s, _, e = jreq(p, "POST", "/unload", {"model": "Bad"})
    check(s == 422, "unload bad model")
    # drain: a host with no workers drains none; bodies are checked
    _, _, dr = jreq(p, "POST", "/drain", {"host": "no-such-host"}, expect=200)
    check(dr == {"workers": 0}, "drain %r" % dr)
    for body, code, field in (({}, "missing_field", "model"), ({"model": "Bad"}, "invalid_field", "model"),
                              ({"host": ""}, "invalid_field", "host"), ({"host": "h", "x": 1}, "unknown_field", None)):
        s, _, e = jreq(p, "POST", "/drain", body)
        check(s == 422 and e["error"]["code"] == code and e["error"].get("field") == field,
              "drain %r: %d %r" % (body, s, e))
    s, _, e = jreq(p, "GET", "/jobs/no-such-job")
    check(s == 404 and e["error"]["code"] == "not_found", "unknown job 404")
    # metrics mention what happened, without ids or prompts
    s, hdrs, data = request(p, "GET", "/metrics")
    text = data.decode()
    check(s == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4"), "metrics type")
    for want in ('vdgx_jobs_submitted_total{model="testgen"}', 'vdgx_jobs_finished_total{model="testgen",status="completed"}',
                 'vdgx_jobs_finished_total{model="testgen",status="failed"}', "vdgx_job_duration_seconds_bucket",
                 "vdgx_job_queue_wait_seconds_bucket", "vdgx_phase_seconds_bucket", 'vdgx_queue_depth{model="testgen"}',
                 'vdgx_workers{model="testgen",state="', "vdgx_worker_rss_bytes{", "vdgx_worker_model_bytes{",
                 'vdgx_bridge_http_requests_total{route="/generate",code="202"}', "vdgx_bridge_up 1",
                 "vdgx_model_load_seconds_bucket"):
        check(want in text, "metrics lack %s" % want)
    for secret in (job_id, failed, "red fox", "boom"):
        check(secret not in text, "metrics leak %r" % secret)


def t_download(st):
    p = st.port
    job_id = submit(p, width=256, height=256, frames=24, steps=1)
    job = wait_job(p, job_id)
    check(job["state"] == "completed", "completed")
    size, sha = job["result"]["size"], job["result"]["sha256"]
    check(size > 3 * 4096, "video big enough for several chunks (%d bytes)" % size)
    s, h, data = request(p, "GET", "/jobs/%s/download" % job_id)
    check(s == 200 and len(data) == size and hashlib.sha256(data).hexdigest() == sha, "full download")
    check(h["content-type"] == "video/mp4" and h["etag"] == '"%s"' % sha, "headers %r" % h)
    check(h["accept-ranges"] == "bytes" and 'filename="%s.mp4"' % job_id in h["content-disposition"], "disposition")
    check(data[4:8] == b"ftyp", "an MP4")
    s, h, body = request(p, "HEAD", "/jobs/%s/download" % job_id)
    check(s == 200 and body == b"" and int(h["content-length"]) == size, "HEAD")
    cases = [("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-10", size - 10, size - 1),
             ("bytes=4000-9000", 4000, 9000), ("bytes=5-%d" % (size + 100), 5, size - 1)]
    for rng, a, b in cases:
        s, h, part = request(p, "GET", "/jobs/%s/download" % job_id, headers={"Range": rng})
        check(s == 206, "%s: %d" % (rng, s))
        check(part == data[a:b + 1], "%s bytes" % rng)
        check(h["content-range"] == "bytes %d-%d/%d" % (a, b, size), "%s content-range %r" % (rng, h["content-range"]))
    s, h, _ = request(p, "GET", "/jobs/%s/download" % job_id, headers={"Range": "bytes=%d-" % size})
    check(s == 416 and h["content-range"] == "bytes */%d" % size, "416")
    s, h, whole = request(p, "GET", "/jobs/%s/download" % job_id, headers={"Range": "bytes=0-1,5-6"})
    check(s == 200 and whole == data, "several ranges: whole body")
    s, h, whole = request(p, "GET", "/jobs/%s/download" % job_id, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    check(s == 200 and whole == data, "If-Range mismatch: whole body")
    s, h, part = request(p, "GET", "/jobs/%s/download" % job_id, headers={"Range": "bytes=0-1", "If-Range": '"%s"' % sha})
    check(s == 206 and part == data[:2], "If-Range match")
    s, h, _ = request(p, "GET", "/jobs/%s/download" % job_id, headers={"If-None-Match": '"%s"' % sha})
    check(s == 304, "If-None-Match: %d" % s)
    # the OpenAI content route streams the same bytes
    s, h, same = request(p, "GET", "/v1/videos/%s/content?variant=video" % job_id)
    check(s == 200 and same == data, "content route")
    s, h, jpg = request(p, "GET", "/v1/videos/%s/content?variant=thumbnail" % job_id)
    check(s == 200 and h["content-type"] == "image/jpeg" and jpg[:2] == b"\xff\xd8" and jpg[-2:] == b"\xff\xd9",
          "thumbnail: %d %r" % (s, jpg[:40]))
    # many at once (made on the bridge's thumbnail thread, one after the other): all whole
    results = [None] * 8

    def fetch(i):
        results[i] = request(p, "GET", "/v1/videos/%s/content?variant=thumbnail" % job_id)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(r is not None and r[0] == 200 and r[2] == jpg for r in results), "concurrent thumbnails")
    # a video deleted mid-way fails the stream instead of hanging
    conn = http.client.HTTPConnection("127.0.0.1", p, timeout=20)
    conn.request("GET", "/jobs/%s/download" % job_id)
    resp = conn.getresponse()
    first = resp.read(1000)
    jreq(p, "DELETE", "/v1/videos/%s" % job_id, expect=200)
    try:
        rest = resp.read()
        check(len(first) + len(rest) < size or first + rest == data, "deleted mid-stream")
    except (http.client.IncompleteRead, ConnectionError):
        pass
    conn.close()
    s, _, _ = request(p, "GET", "/jobs/%s/download" % job_id)
    check(s == 404, "download after delete: %d" % s)


def read_sse(port, path, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream", "SSE response")
    events, cur = [], {}
    for raw in resp:
        line = raw.decode().rstrip("\n")
        if line == "":
            if cur:
                events.append((cur.get("event"), json.loads(cur["data"])))
            cur = {}
        elif line.startswith(":"):
            continue
        else:
            k, _, v = line.partition(": ")
            cur[k] = v
    conn.close()
    return events


def t_events(st):
    p = st.port
    job_id = submit(p, prompt="watch sleep_ms=100", steps=5)
    events = read_sse(p, "/jobs/%s/events" % job_id)
    check(len(events) >= 3, "some events: %r" % events)
    last = events[-1]
    check(last[0] == "state" and last[1]["state"] == "completed", "ends with the final state: %r" % (last,))
    check(any(e[0] == "progress" and e[1]["phase"] == "denoising" for e in events), "progress events")
    percents = [e[1]["percent"] for e in events]
    check(percents[-1] == 100 or max(percents) >= 90, "percent grows: %r" % percents)
    # a finished job: one state event and the end
    events = read_sse(p, "/jobs/%s/events" % job_id)
    check(len(events) == 1 and events[0][1]["state"] == "completed", "finished job stream")
    # cancelled while watching
    job_id = submit(p, prompt="long sleep_ms=300", steps=50)
    time.sleep(0.5)
    import threading
    t = threading.Timer(0.8, lambda: jreq(p, "DELETE", "/v1/videos/" + job_id))
    t.start()
    events = read_sse(p, "/jobs/%s/events" % job_id)
    t.join()
    check(events[-1][1]["state"] in ("cancelled", "failed"), "cancelled stream ends: %r" % (events[-1],))
    s, _, _ = request(p, "GET", "/jobs/no-such/events")
    check(s == 404, "events of an unknown job")
    # every stream ended is counted out
    for _ in range(40):
        if b"vdgx_bridge_sse_streams 0\n" in request(p, "GET", "/metrics")[2]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("vdgx_bridge_sse_streams did not return to 0")


def t_videos(st):
    p = st.port
    created = []
    for i in range(3):
        _, _, v = jreq(p, "POST", "/v1/videos", {"model": "testgen", "prompt": "video %d" % i, "seconds": "1",
                                                  "size": "64x48"}, expect=200)
        check(v["object"] == "video" and v["status"] in ("queued", "in_progress", "completed"), "create %r" % v)
        check(v["model"] == "testgen" and isinstance(v["created_at"], int) and v["size"] == "64x48", "create fields %r" % v)
        check(v["seconds"] == "1" and v["prompt"] == "video %d" % i, "create seconds/prompt %r" % v)
        created.append(v["id"])
    # multipart/form-data, as the SDKs send it
    boundary = "b0undary"
    parts = "".join('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)
                    for k, v in (("model", "testgen"), ("prompt", "form video"), ("seconds", "1"), ("size", "64x48")))
    s, _, data = request(p, "POST", "/v1/videos", parts + "--%s--\r\n" % boundary,
                         {"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    v = json.loads(data)
    check(s == 200 and v["prompt"] == "form video", "multipart create: %d %r" % (s, v))
    created.append(v["id"])
    # urlencoded too
    s, _, data = request(p, "POST", "/v1/videos", "model=testgen&prompt=url+video&seconds=1",
                         {"Content-Type": "application/x-www-form-urlencoded"})
    check(s == 200 and json.loads(data)["prompt"] == "url video", "urlencoded create")
    created.append(json.loads(data)["id"])
    for vid in created:
        v = wait_job(p, vid, states=("completed", "failed"), prefix="/v1/videos/")
        check(v["status"] == "completed" and v["progress"] == 100 and isinstance(v["completed_at"], int), "done %r" % v)
    # the broker's order is creation time (ties by id); jobs made in one millisecond may swap
    _, _, full = jreq(p, "GET", "/v1/videos?order=asc&limit=100", expect=200)
    order = [d["id"] for d in full["data"]]
    check(sorted(order) == sorted(created) and full["has_more"] is False, "asc holds every video")
    # list: newest first by default
    _, _, lst = jreq(p, "GET", "/v1/videos", expect=200)
    check(lst["object"] == "list" and [d["id"] for d in lst["data"]] == order[::-1], "desc list %r" % lst)
    check(lst["first_id"] == order[-1] and lst["last_id"] == order[0] and lst["has_more"] is False, "list ids")
    _, _, page = jreq(p, "GET", "/v1/videos?limit=2", expect=200)
    check([d["id"] for d in page["data"]] == order[::-1][:2] and page["has_more"] is True, "page 1 %r" % page)
    _, _, page2 = jreq(p, "GET", "/v1/videos?limit=2&after=" + page["last_id"], expect=200)
    check([d["id"] for d in page2["data"]] == order[::-1][2:4] and page2["has_more"] is True, "page 2")
    _, _, asc = jreq(p, "GET", "/v1/videos?order=asc&limit=3", expect=200)
    check([d["id"] for d in asc["data"]] == order[:3] and asc["has_more"] is True, "asc %r" % asc)
    _, _, asc2 = jreq(p, "GET", "/v1/videos?order=asc&limit=3&after=" + asc["last_id"], expect=200)
    check([d["id"] for d in asc2["data"]] == order[3:], "asc page 2")
    # delete: object shape, then gone
    _, _, d = jreq(p, "DELETE", "/v1/videos/" + created[0], expect=200)
    check(d == {"id": created[0], "object": "video.deleted", "deleted": True}, "delete %r" % d)
    s, _, e = jreq(p, "GET", "/v1/videos/" + created[0])
    check(s == 404, "deleted video is gone")
    s, _, e = jreq(p, "DELETE", "/v1/videos/" + created[0])
    check(s == 404, "second delete 404")
    # cancel a running one by deleting it
    _, _, v = jreq(p, "POST", "/v1/videos", {"model": "testgen", "prompt": "slow sleep_ms=300", "steps": 40}, expect=200)
    wait_job(p, v["id"], states=("in_progress",), prefix="/v1/videos/")
    jreq(p, "DELETE", "/v1/videos/" + v["id"], expect=200)
    # a failed one maps to status failed with an error
    _, _, v = jreq(p, "POST", "/v1/videos", {"model": "testgen", "prompt": "fail=error"}, expect=200)
    v = wait_job(p, v["id"], states=("failed", "completed"), prefix="/v1/videos/")
    check(v["status"] == "failed" and v["error"]["code"] and v["error"]["message"], "failed video %r" % v)


MATRIX = [
    # method, path, content-type, body, status, error code
    ("GET", "/nope", None, None, 404, "not_found"),
    ("GET", "/jobs/", None, None, 404, "not_found"),
    ("GET", "/jobs/%2e%2e", None, None, 404, None),
    ("GET", "/jobs/" + "a" * 65, None, None, 404, "not_found"),
    ("GET", "/jobs/x/nope", None, None, 404, "not_found"),
    ("PUT", "/generate", "application/json", "{}", 405, "method_not_allowed"),
    ("POST", "/health", "application/json", "{}", 405, "method_not_allowed"),
    ("DELETE", "/jobs/x", None, None, 405, "method_not_allowed"),
    ("PATCH", "/v1/videos/x", None, None, 405, "method_not_allowed"),
    ("POST", "/generate", None, "{}", 415, "unsupported_media_type"),
    ("POST", "/generate", "text/plain", "{}", 415, "unsupported_media_type"),
    ("POST", "/generate", "application/jsonp", "{}", 415, "unsupported_media_type"),
    ("POST", "/unload", "multipart/form-data; boundary=x", "--x--", 415, "unsupported_media_type"),
    ("POST", "/generate", "application/json", "", 400, "invalid_json"),
    ("POST", "/generate", "application/json", "{", 400, "invalid_json"),
    ("POST", "/generate", "application/json", "[1,2]", 400, "invalid_body"),
    ("POST", "/generate", "application/json", "null", 400, "invalid_body"),
    ("POST", "/generate", "application/json", '{"prompt":"\xff"}', 400, "invalid_json"),
    ("POST", "/generate", "application/json", "[" * 5000 + "]" * 5000, 400, "invalid_json"),
    ("POST", "/generate", "application/json", '{"prompt":"x","seed":1e400}', 400, "invalid_json"),
    ("POST", "/generate", "application/json", '{"prompt":"x","seed":99999999999999999999}', 400, "invalid_json"),
    ("POST", "/generate", "application/json", '{"model":"testgen"}', 422, "missing_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":""}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","extra":1}', 422, "unknown_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","width":8,"height":64}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","width":1024,"height":64}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","resolution":"1024x576"}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","frames":65}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","steps":0}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","steps":201}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","guidance":-0.5}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","guidance":"high"}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","seed":-1}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","seed":1.5}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","fps":0}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","duration":-1}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","sampler":"ddim"}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","no_cache":"yes"}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","priority":1}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","fps":121}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"x","width":64}', 422, "invalid_field"),
    ("POST", "/generate", "application/json", '{"model":"testgen","prompt":"' + "p" * 8193 + '"}', 422, "invalid_field"),
    ("POST", "/v1/videos", "application/json", '{"prompt":"x","input_reference":"data"}', 422, "invalid_image"),
    ("POST", "/v1/videos", "application/json", '{"prompt":"x","input_reference":{"file_id":"file-1"}}', 422, "unsupported"),
    ("POST", "/v1/videos", "application/json", '{"prompt":"x","size":"big"}', 422, "invalid_field"),
    ("POST", "/v1/videos", "application/json", '{"prompt":"x","seconds":"forever"}', 422, "invalid_field"),
    ("POST", "/v1/videos", "application/json", '{"prompt":"x","resolution":"64x48"}', 422, "unknown_field"),
    ("GET", "/v1/videos?limit=101", None, None, 400, "invalid_query"),
    ("GET", "/v1/videos?limit=abc", None, None, 400, "invalid_query"),
    ("GET", "/v1/videos?after=bad%20id", None, None, 400, "invalid_query"),
    ("GET", "/v1/videos?order=sideways", None, None, 400, "invalid_query"),
    ("GET", "/v1/videos/nope", None, None, 404, "not_found"),
    ("DELETE", "/v1/videos/nope", None, None, 404, "not_found"),
    ("GET", "/v1/videos/nope/content", None, None, 404, "not_found"),
    ("GET", "/jobs/nope/download", None, None, 404, "not_found"),
    ("POST", "/unload", "application/json", '{"model":"testgen","x":1}', 422, "unknown_field"),
    ("POST", "/unload", "application/json", "{}", 422, "missing_field"),
    ("POST", "/unload", "application/json", "[]", 400, "invalid_body"),
]


def wait_worker(p, service="testgen", timeout=15):
    """Until a worker of service has registered (and with it, the model's limits)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, info = jreq(p, "GET", "/info")
        if status == 200 and any(w["service"] == service for w in info.get("workers", [])):
            return
        time.sleep(0.05)
    raise AssertionError("no %s worker registered" % service)


def t_matrix(st):
    p = st.port
    # The model limits (sizes, frames, steps, ...) are the broker's check, against what the
    # testgen worker advertises when it registers.
    wait_worker(p)
    for method, path, ctype, body, want, code in MATRIX:
        hdrs = {"Content-Type": ctype} if ctype else {}
        s, h, data = request(p, method, path, body.encode("latin-1") if body is not None else None, hdrs)
        if s != want:
            raise AssertionError("%s %s %r: expected %d, got %d %r" % (method, path, (body or "")[:60], want, s, data[:200]))
        err = json.loads(data)["error"]
        check(isinstance(err["message"], str) and err["message"], "message")
        if code:
            check(err["code"] == code, "%s %s: code %s, expected %s" % (method, path, err["code"], code))
        if s == 405:
            check("allow" in h, "405 has Allow")
    # A size beyond the model's limits names the field the client used, with the model's words.
    for path, body, field in (("/generate", {"resolution": "1024x576"}, "resolution"),
                              ("/v1/videos", {"size": "1024x576"}, "size"),
                              ("/generate", {"width": 1024, "height": 576}, "width")):
        body.update({"model": "testgen", "prompt": "x"})
        s, _, e = jreq(p, "POST", path, body)
        check(s == 422 and e["error"]["field"] == field and "16 to 512" in e["error"]["message"],
              "%s %r: %d %r" % (path, body, s, e))
    # a body over the cap without Content-Length (chunked) -> 413: 64 KiB for most routes,
    # 12 MiB for the submits (they may carry images)
    for path, size in (("/unload", 70000), ("/generate", 12 * 1024 * 1024 + 1)):
        conn = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        blob = b" " * size
        try:
            conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(blob), blob))
        except (BrokenPipeError, ConnectionResetError):
            pass
        check(conn.getresponse().status == 413, "chunked body over the cap: %s" % path)
        conn.close()
    # random garbage: always a 4xx, never a crash or a hang
    rnd = random.Random(1234)
    fields = ["model", "prompt", "seed", "steps", "width", "height", "frames", "fps", "guidance", "shift",
              "sampler", "precision", "priority", "no_cache", "duration", "resolution", "negative_prompt", "x"]
    values = [None, True, False, -1, 0, 1, 2 ** 63, 2 ** 64, 1.5, -0.0, 1e308, "", "x", "64x48", "testgen",
              [], {}, [1], {"a": 1}, "\u0000", "\ud7ff", "a" * 300]
    for i in range(300):
        if i % 3 == 0:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
        else:
            obj = {rnd.choice(fields): rnd.choice(values) for _ in range(rnd.randint(0, 6))}
            obj.setdefault("model", "testgen")
            body = json.dumps(obj).encode()
            if b'"prompt"' in body and rnd.random() < 0.5:
                body = body.replace(b'"prompt"', b'"bogus"')
        s, _, data = request(p, "POST", "/generate", body, {"Content-Type": "application/json"})
        check(s in (202, 400, 413, 422, 429), "garbage %r -> %d %r" % (body[:80], s, data[:120]))
        if s != 202:
            json.loads(data)["error"]["code"]
    # raw protocol abuse: the server stays up
    for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 70000 + b"\r\n\r\n",
                b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"):
        sock = socket.create_connection(("127.0.0.1", p), timeout=5)
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(4096)
        except OSError:
            pass
        sock.close()
    jreq(p, "GET", "/health", expect=200)


def t_auth(st):
    keys = os.path.join(st.tmp, "keys.txt")
    line = subprocess.run([os.path.join(BIN, "vdgx-bridge"), "--hash-key", "sekrit", "ci"], capture_output=True,
                          text=True, check=True).stdout
    check(line.strip() == hashlib.sha256(b"sekrit").hexdigest() + " ci", "--hash-key prints the line: %r" % line)
    with open(keys, "w") as f:
        f.write("# test keys\n" + line + hashlib.sha256(b"other").hexdigest() + " second\n")
    # Refill rates are slow so that a slow (loaded) machine cannot refill a bucket between
    # the requests that are meant to empty it.
    p = st.start_bridge(["--keys", keys, "--rate", "1", "--burst", "5"])
    good = {"Authorization": "Bearer sekrit"}
    jreq(p, "GET", "/health", expect=200)
    jreq(p, "GET", "/openapi.json", expect=200)
    for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekrit"}, {"Authorization": "Bearer "}):
        s, h, e = jreq(p, "GET", "/queue/status", headers=hdrs)
        check(s == 401 and e["error"]["code"] == "unauthorized" and "bearer" in h["www-authenticate"].lower(),
              "401 for %r" % hdrs)
    s, _, e = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "x"})
    check(s == 401, "submit needs a key")
    # rate: burst 5 at 1/s. Spend the bucket (the submit takes one), then expect 429 with
    # Retry-After: at most the burst plus what refilled meanwhile gets through. The clock
    # starts before the submit (the bucket refills from its first use), and the requests go
    # on until one is refused, however slowly a loaded machine answers them.
    t0, statuses = time.time(), []
    _, _, o = jreq(p, "POST", "/generate", {"model": "testgen", "prompt": "keyed"}, good, expect=202)
    while 429 not in statuses and len(statuses) < 400:
        s, h, e = jreq(p, "GET", "/jobs/" + o["id"], headers=good)
        statuses.append(s)
    check(statuses[0] == 200 and statuses[-1] == 429 and 4 <= statuses.count(200) <= 4 + time.time() - t0 + 1,
          "rate limited: %r" % statuses)
    check(int(h["retry-after"]) >= 1 and e["error"]["code"] == "rate_limited", "429 shape")
    # another key has its own bucket (not 429), and another key's job is not found for it
    s, _, _ = jreq(p, "GET", "/jobs/" + o["id"], headers={"Authorization": "Bearer other"})
    check(s == 404, "second key: not limited, and not the owner: %d" % s)
    time.sleep(1.1)
    s, _, _ = jreq(p, "GET", "/jobs/" + o["id"], headers=good)
    check(s == 200, "refilled after a second")
    # per-IP limit when there are no keys
    p2 = st.start_bridge(["--rate", "0.2", "--burst", "2"])
    statuses = [request(p2, "GET", "/queue/status")[0] for _ in range(4)]
    check(statuses[:2] == [200, 200] and 429 in statuses[2:], "per-IP limit %r" % statuses)
    check(request(p2, "GET", "/health")[0] == 200, "health is never limited")
    # the same settings from a config file ([broker] endpoints, [bridge] http/keys/rate/burst);
    # http needs a real port: another process may take the one chosen first, so a bridge
    # that could not listen is started again on another
    ini = os.path.join(st.tmp, "vdgx.ini")
    for attempt in range(5):
        port = free_port()
        with open(ini, "w") as f:
            f.write("[broker]\nendpoint = %s\nevents = %s\n[bridge]\nhttp = 127.0.0.1:%d\nkeys = %s\n"
                    "rate = 0.2\nburst = 2\n" % (st.broker_ep, st.events_ep, port, keys))
        b = st.spawn("bridge-ini", [os.path.join(BIN, "vdgx-bridge"), "--config", ini], env=bridge_env())
        try:
            check(bridge_port(b, st.logs[-1]) == port, "config: http port")
            st.bridges.append(b)
            break
        except RuntimeError as e:
            check(b.poll() is not None and "cannot listen" in str(e) and attempt < 4, "config bridge: %s" % e)
    check(request(port, "GET", "/queue/status")[0] == 401, "config: keys enforced")
    codes = [request(port, "GET", "/queue/status", headers=good)[0] for _ in range(3)]
    check(codes[:2] == [200, 200] and codes[2] == 429, "config: rate and burst %r" % codes)
    # non-loopback without keys is refused
    r = subprocess.run([os.path.join(BIN, "vdgx-bridge"), "--listen", "0.0.0.0:%d" % free_port(), "--broker",
                        st.broker_ep], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and "--keys" in r.stderr, "refuses 0.0.0.0 without keys: %r" % r.stderr)
    r = subprocess.run([os.path.join(BIN, "vdgx-bridge"), "--listen", "0.0.0.0:%d" % free_port(), "--broker",
                        st.broker_ep, "--keys", os.path.join(st.tmp, "missing")], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and "missing" in r.stderr, "missing keys file")


def t_openapi(st):
    p = st.port
    # A real validator first: the document is valid OpenAPI (the version it declares).
    work = node_packages("@apidevtools/swagger-parser")
    if not work:
        return SKIP
    r = subprocess.run([shutil.which("node"), "validate_openapi.mjs", "http://127.0.0.1:%d/openapi.json" % p],
                       cwd=work, capture_output=True, text=True, timeout=60)
    sys.stdout.write(r.stdout)
    check(r.returncode == 0, "openapi.json fails the validator:\n" + (r.stdout + r.stderr)[-3000:])
    job_id = submit(p, steps=1)
    wait_job(p, job_id)
    _, _, doc = jreq(p, "GET", "/openapi.json", expect=200)
    check(doc["openapi"].startswith("3."), "OpenAPI 3")
    seen = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            url = path.replace("{id}", job_id)
            body = None
            if method == "post":
                body = {"/unload": {"model": "testgen"}, "/drain": {"host": "no-such-host"}}.get(
                    path, {"model": "testgen", "prompt": "openapi"})
            s, _, data = request(p, method.upper(), url, body)
            documented = set(op["responses"].keys())
            check(str(s) in documented, "%s %s answered %d, documented %s" % (method, path, s, sorted(documented)))
            check(s not in (404, 405) or "no such route" not in data.decode(errors="replace"), "%s %s exists" % (method, path))
            seen.add((method.upper(), path))
    # every route the server announces is documented, with each of its methods
    _, _, root = jreq(p, "GET", "/", expect=200)
    for line in root["routes"]:
        methods, path = line.rsplit(" ", 1)
        for m in methods.split(", "):
            if m != "HEAD":
                check((m, path) in seen, "route %s %s is not in openapi.json" % (m, path))
    check(len(seen) == sum(len(v) for v in doc["paths"].values()), "no duplicate operations")


def t_webhooks(st):
    """Per-job webhooks against a real local HTTP receiver: signed (HMAC-SHA256 of
    id.timestamp.body), filtered by event, retried with backoff after a failure."""
    import hmac
    from http.server import BaseHTTPRequestHandler, HTTPServer
    secret = b"webhook-test-secret-0123456789"
    path = os.path.join(st.tmp, "webhook.secret")
    open(path, "wb").write(secret + b"\n")
    # The receiver is on loopback: the operator allows it (webhooks reach only public
    # addresses otherwise, checked below against a bridge without the allow list).
    port = st.start_bridge(["--webhook-secret-file", path, "--webhook-allow", "127.0.0.0/8"])
    strict = st.start_bridge(["--webhook-secret-file", path])
    got, fail_first = [], {"n": 1}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((time.time(), dict(self.headers), body))
            status = 200
            if json.loads(body)["event"] == "completed" and fail_first["n"] > 0:
                fail_first["n"] -= 1
                status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/hook" % srv.server_address[1]
    try:
        # Bad fields: named, 422; a bridge without a secret refuses webhooks.
        s, _, e = jreq(port, "POST", "/v1/videos", {"model": "testgen", "prompt": "x", "webhook": "ftp://x/y"})
        check(s == 422 and e["error"]["field"] == "webhook", "bad webhook url: %d %r" % (s, e))
        s, _, e = jreq(port, "POST", "/v1/videos", {"model": "testgen", "prompt": "x", "webhook": url,
                                                     "webhook_events_filter": ["finished"]})
        check(s == 422 and e["error"]["field"] == "webhook_events_filter", "bad filter: %d %r" % (s, e))
        s, _, e = jreq(st.port, "POST", "/v1/videos", {"model": "testgen", "prompt": "x", "webhook": url})
        check(s == 422 and "secret" in e["error"]["message"], "no secret: %d %r" % (s, e))
        # SSRF: internal destinations are refused (422 on "webhook") by every spelling, by
        # name too; the allow list opens only the networks it names.
        rport = srv.server_address[1]
        internal = [url, "http://localhost:%d/hook" % rport, "http://[::1]:%d/hook" % rport,
                    "http://[::ffff:127.0.0.1]:%d/hook" % rport, "http://2130706433:%d/hook" % rport,
                    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook",
                    "http://[fd00::1]/hook", "http://[fe80::1]/hook", "http://0.0.0.0:%d/hook" % rport,
                    "http://192.168.0.1/hook", "http://224.0.0.1/hook"]
        for bad in internal:
            s, _, e = jreq(strict, "POST", "/v1/videos", {"model": "testgen", "prompt": "x", "webhook": bad})
            check(s == 422 and e["error"]["field"] == "webhook" and "webhook_allow" in e["error"]["message"],
                  "internal webhook %s accepted: %d %r" % (bad, s, e))
        for bad in ["http://10.0.0.1/hook", "http://[::1]:%d/hook" % rport]:
            s, _, e = jreq(port, "POST", "/v1/videos", {"model": "testgen", "prompt": "x", "webhook": bad})
            check(s == 422 and e["error"]["field"] == "webhook", "outside the allow list %s: %d %r" % (bad, s, e))
        check(not got, "a refused webhook was delivered")
        # A bad allow list stops the bridge at start with a message.
        r = subprocess.run([os.path.join(BIN, "vdgx-bridge"), "--listen", "127.0.0.1:0",
                            "--webhook-secret-file", path, "--webhook-allow", "10.0.0.0/40"],
                           capture_output=True, timeout=20)
        check(r.returncode != 0 and b"webhook_allow" in r.stderr, "bad allow list: %d %r" % (r.returncode, r.stderr))
        # start + completed (the default filter); the first completed delivery fails: retried.
        _, _, v = jreq(port, "POST", "/v1/videos", {"model": "testgen", "prompt": "webhook sleep_ms=30",
                                                     "seconds": "1", "webhook": url}, expect=200)
        job = v["id"]
        deadline = time.time() + 30
        while time.time() < deadline and sum(1 for g in got if json.loads(g[2])["event"] == "completed") < 2:
            time.sleep(0.1)
        events = [json.loads(g[2])["event"] for g in got]
        check(events.count("start") >= 1 and events.count("completed") == 2 and "progress" not in events,
              "deliveries %r" % events)
        done = [g for g in got if json.loads(g[2])["event"] == "completed"]
        check(done[1][0] - done[0][0] >= 0.9, "no backoff before the retry (%.2f s)" % (done[1][0] - done[0][0]))
        check(done[0][1]["X-VDGX-Webhook-Id"] == done[1][1]["X-VDGX-Webhook-Id"], "a retry has a new id")
        for _, hdrs, body in got:
            msg = ("%s.%s." % (hdrs["X-VDGX-Webhook-Id"], hdrs["X-VDGX-Webhook-Timestamp"])).encode() + body
            want = "sha256=" + hmac.new(secret, msg, hashlib.sha256).hexdigest()
            check(hmac.compare_digest(hdrs["X-VDGX-Webhook-Signature"], want), "bad signature")
            d = json.loads(body)
            check(d["job"]["id"] == job and hdrs["X-VDGX-Webhook-Event"] == d["event"], "delivery %r" % d)
        final = json.loads(done[1][2])
        check(final["job"]["state"] == "completed" and final["job"]["content_url"].endswith("/content"),
              "completed delivery %r" % final)
        # progress only (from a form field, comma-separated, on the native route).
        got.clear()
        job2 = submit(port, prompt="progress hooks", steps=3, webhook=url, webhook_events_filter=["progress"])
        wait_job(port, job2)
        deadline = time.time() + 10
        while time.time() < deadline and len(got) < 3:
            time.sleep(0.1)
        events = {json.loads(g[2])["event"] for g in got}
        check(events == {"progress"} and len(got) >= 3, "progress-only deliveries %r" % [json.loads(g[2])["event"] for g in got])
        _, _, metrics = request(port, "GET", "/metrics")
        check(b'vdgx_bridge_webhooks_total{outcome="retried"} 1' in metrics, "webhook metrics")
        print("webhooks: %d deliveries signed, filtered, one retried after a 500" % len(done))
    finally:
        srv.shutdown()


def sse_read(port, path, headers=None, until_final=True, max_events=1000, timeout=30):
    """The events of an SSE stream: [(id, event, data)], every event must have an id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    check(resp.status == 200, "SSE %s: %d" % (path, resp.status))
    out, cur = [], {}
    while len(out) < max_events:
        line = resp.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line == "":
            if "event" in cur:
                check("id" in cur, "an SSE event without an id: %r" % cur)
                out.append((int(cur["id"]), cur["event"], json.loads(cur["data"])))
                if until_final and cur["event"] == "state" and out[-1][2]["state"] in ("completed", "failed", "cancelled", "expired"):
                    break
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            cur[k] = v
    conn.close()
    return out


def t_sse_resume(st):
    """SSE events carry ids; a client that reconnects with Last-Event-ID gets only what is
    newer, and the stream still ends with the final state."""
    p = st.port
    job = submit(p, prompt="resume sleep_ms=150", steps=8)
    first = sse_read(p, "/jobs/%s/events" % job, until_final=False, max_events=3)
    check(len(first) == 3, "first events %r" % first)
    ids = [e[0] for e in first]
    check(ids == sorted(ids), "ids do not grow: %r" % ids)
    last = ids[-1]
    rest = sse_read(p, "/jobs/%s/events" % job, {"Last-Event-ID": str(last)})
    check(rest and all(e[0] > last for e in rest), "resumed stream repeats old events: %r (last %d)" % ([e[0] for e in rest], last))
    check(rest[-1][2]["state"] == "completed", "resumed stream did not end completed: %r" % rest[-1:])
    # Reconnecting after the end: nothing older is sent again, the stream ends at once.
    again = sse_read(p, "/jobs/%s/events" % job, {"Last-Event-ID": str(rest[-1][0])})
    check(all(e[0] >= rest[-1][0] for e in again), "after the end: %r" % again)
    s, _, e = jreq(p, "GET", "/jobs/%s/events" % job, headers={"Last-Event-ID": "x1"})
    check(s == 400 and e["error"]["field"] == "Last-Event-ID", "bad Last-Event-ID: %d %r" % (s, e))
    print("sse_resume: %d events, then %d after Last-Event-ID %d" % (len(first), len(rest), last))


def t_models(st):
    """GET /v1/models (OpenAI list), /v1/models/{id}; the default model."""
    p = st.start_bridge(["--default-model", "testgen"])
    _, _, lst = jreq(p, "GET", "/v1/models", expect=200)
    check(lst["object"] == "list" and [m["id"] for m in lst["data"]] == ["testgen"], "models %r" % lst)
    m = lst["data"][0]
    check(m["object"] == "model" and m["owned_by"] and isinstance(m["created"], int) and m["default"], "model %r" % m)
    _, _, one = jreq(p, "GET", "/v1/models/testgen", expect=200)
    check(one["id"] == "testgen", "retrieve %r" % one)
    s, _, e = jreq(p, "GET", "/v1/models/nosuch")
    check(s == 404 and e["error"]["code"] == "model_not_found", "unknown model %d %r" % (s, e))
    _, _, v = jreq(p, "POST", "/v1/videos", {"prompt": "no model", "seconds": "1"}, expect=200)
    check(v["model"] == "testgen", "default model %r" % v)


def t_promtool(st):
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool not found: skipped")
        return SKIP
    p = st.port
    job_id = submit(p, steps=1)
    wait_job(p, job_id)
    submit(p, prompt="fail=error")
    request(p, "GET", "/nope")
    time.sleep(0.5)
    _, _, data = request(p, "GET", "/metrics")
    r = subprocess.run([promtool, "check", "metrics"], input=data, capture_output=True, timeout=30)
    if r.returncode != 0:
        sys.stderr.write(data.decode()[:3000])
        raise AssertionError("promtool: %s %s" % (r.stdout.decode(), r.stderr.decode()))
    print("promtool check metrics: OK (%d bytes, %d samples)" % (len(data), sum(1 for l in data.splitlines() if l and not l.startswith(b"#"))))


def node_packages(package):
    """The folder where tests/bridge/npm's packages (pinned by its package-lock.json) are
    installed: BUILD/tests/bridge/npm, as `scripts/setup.sh --test` leaves it (npm ci is run
    here when it did not). None, with the reason printed, when node or the packages are
    missing."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        print("npm/node not found (scripts/setup.sh --test installs them): skipped")
        return None
    import fcntl
    here = os.path.dirname(os.path.abspath(__file__))
    work = os.path.join(BUILD, "tests", "bridge", "npm")
    os.makedirs(work, exist_ok=True)
    # One install at a time: scenarios run in parallel (openapi, sdk), and npm ci empties
    # node_modules first, so another scenario must not look at it meanwhile.
    with open(os.path.join(BUILD, "tests", "bridge", "npm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(os.path.join(work, "node_modules", package)):
            for f in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(here, "npm", f), os.path.join(work, f))
            try:
                r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True,
                                   text=True, timeout=240)
            except subprocess.TimeoutExpired:
                print("npm ci timed out: skipped")
                return None
            if r.returncode != 0:
                print("npm ci failed (offline?): skipped\n" + r.stderr[-500:])
                return None
    for f in ("openai_sdk.mjs", "openai_sdk_i2v.mjs", "validate_openapi.mjs"):
        shutil.copy(os.path.join(here, f), os.path.join(work, f))
    return work


def t_sdk(st):
    work = node_packages("openai")
    if not work:
        return SKIP
    node = shutil.which("node")
    out = os.path.join(st.tmp, "sdk.mp4")
    r = subprocess.run([node, "openai_sdk.mjs", "http://127.0.0.1:%d/v1" % st.port, out], cwd=work,
                       capture_output=True, text=True, timeout=120)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        raise AssertionError("openai SDK script failed:\n" + r.stderr[-3000:])


def sdk_i2v(st, model, image, size=None, extra=None):
    """Runs openai_sdk_i2v.mjs; returns the MP4's path (None when skipped)."""
    work = node_packages("openai")
    if not work:
        return None
    out = os.path.join(st.tmp, "sdk-i2v.mp4")
    argv = [shutil.which("node"), "openai_sdk_i2v.mjs", "http://127.0.0.1:%d/v1" % st.port, model, image, out,
            size or "", json.dumps(extra or {})]
    r = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=280)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        raise AssertionError("openai SDK i2v script failed:\n" + r.stderr[-3000:])
    return out


def mp4_frames(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames,width,height", "-of", "json", path],
                       capture_output=True, text=True, check=True, timeout=60)
    return json.loads(r.stdout)["streams"][0]


def t_sdk_images(st):
    """The OpenAI SDK with an image, against testgen-i2v (its first frame is the image)."""
    wait_worker(st.port, "testgen-i2v")
    make_image(st.tmp, "red.png", 0xc83214, "64x48")
    out = sdk_i2v(st, "testgen-i2v", os.path.join(st.tmp, "red.png"), "64x48", {"frames": 4})
    if not out:
        return SKIP
    info = mp4_frames(out)
    check(int(info["nb_read_frames"]) == 4 and info["width"] == 64, "frames %r" % info)
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", out, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=30).stdout
    n = len(raw) // 3
    check(near(tuple(sum(raw[c::3]) / n for c in range(3)), 0xc83214), "the first frame is the uploaded image")


def t_sdk_wan_i2v(st):
    """The OpenAI SDK with an image against the real tiny Wan 2.1 image-to-video model
    (vdgx-worker --make-tiny-checkpoint --model wan21-i2v-tiny): an MP4 with the frames
    asked for. Skipped (77) while the worker does not have the model."""
    worker = os.path.join(BIN, "vdgx-worker")
    models = subprocess.run([worker, "--list-models"], capture_output=True, text=True, timeout=30).stdout
    if "wan21-i2v-tiny" not in models:
        print("vdgx-worker has no wan21-i2v-tiny model yet: skipped")
        return SKIP
    weights = os.path.join(st.tmp, "wan21-i2v-tiny")
    subprocess.run([worker, "--make-tiny-checkpoint", weights, "--model", "wan21-i2v-tiny"], check=True,
                   capture_output=True, timeout=120)
    st.spawn("worker", [worker, "--model", "wan21-i2v-tiny", "--weights", weights, "--broker", st.broker_ep,
                        "--data", os.path.join(st.tmp, "worker-wan"), "--threads", "2", "--heartbeat-ms", "200"])
    wait_worker(st.port, "wan21-i2v-tiny", timeout=60)
    _, _, info = jreq(st.port, "GET", "/info", expect=200)
    m = [x for x in info.get("models", []) if x.get("name") == "wan21-i2v-tiny"]
    limits = (m[0].get("limits") if m else None) or {}
    check(limits.get("images", 0) >= 1, "wan21-i2v-tiny advertises images: %r" % m)
    if limits.get("sizes"):
        w, h = (int(v) for v in limits["sizes"][0].split("x"))
    else:
        w = h = max(limits.get("wh_min", 16), limits.get("wh_multiple", 16))
    make_image(st.tmp, "frame.png", 0x3080c0, "%dx%d" % (w * 2, h * 2))
    out = sdk_i2v(st, "wan21-i2v-tiny", os.path.join(st.tmp, "frame.png"), "%dx%d" % (w, h),
                  {"frames": 5, "steps": 2})
    if not out:
        return SKIP
    info = mp4_frames(out)
    # the pipeline takes the size from the image's aspect within the requested area: the image
    # has the requested aspect, so the size is the requested one
    check(int(info["nb_read_frames"]) == 5 and (info["width"], info["height"]) == (w, h), "MP4 %r" % info)
    print("wan21-i2v-tiny through the OpenAI SDK: %dx%d, %s frames" % (info["width"], info["height"], info["nb_read_frames"]))


def t_broker_down(st):
    p = st.port
    job_id = submit(p, steps=1)
    wait_job(p, job_id)
    st.broker.send_signal(signal.SIGKILL)
    st.broker.wait()
    # a finished job's status may still come from the bridge's cache of final statuses
    s, _, _ = jreq(p, "GET", "/jobs/" + job_id)
    check(s in (200, 503), "cached or 503")
    t0 = time.time()
    s, h, e = jreq(p, "GET", "/jobs/another-job")
    check(s == 503 and e["error"]["code"] == "unavailable" and "retry-after" in h, "503 when the broker is gone")
    check(time.time() - t0 < 6, "answered by the deadline")
    # many waiting at once all get answered
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(16) as ex:
        codes = list(ex.map(lambda _: request(p, "GET", "/queue/status")[0], range(32)))
    check(all(c == 503 for c in codes), "all 503: %r" % codes)
    jreq(p, "GET", "/health", expect=200)
    _, _, data = request(p, "GET", "/metrics")
    check(b"vdgx_bridge_up 0" in data, "metrics say the broker is down")


def t_paging(st):
    """More jobs than one broker list reply (1000): newest-first pages walk them all."""
    p = st.port
    total = 1205
    conn = http.client.HTTPConnection("127.0.0.1", p, timeout=20)
    ids = []
    for i in range(total):
        conn.request("POST", "/v1/videos", json.dumps({"model": "idle", "prompt": "q%d" % i}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        check(resp.status == 200, "create %d: %d %r" % (i, resp.status, body[:200]))
        ids.append(json.loads(body)["id"])
    # the queue is full now (--queue-max): 429 with Retry-After
    s, h, e = jreq(p, "POST", "/v1/videos", {"model": "idle", "prompt": "one too many"})
    check(s == 429 and "retry-after" in h and e["error"]["code"] == "queue_full", "queue full: %d %r" % (s, e))
    seen, after, pages = [], None, 0
    while True:
        path = "/v1/videos?limit=100" + ("&after=" + after if after else "")
        conn.request("GET", path)
        resp = conn.getresponse()
        page = json.loads(resp.read())
        check(resp.status == 200, "page status")
        seen += [d["id"] for d in page["data"]]
        pages += 1
        if not page["has_more"]:
            break
        after = page["last_id"]
        check(pages < 50, "paging ends")
    conn.close()
    check(len(seen) == total and set(seen) == set(ids), "every job exactly once (%d seen)" % len(seen))
    # the broker's own order (oldest first: creation time, ties by id) walked with order=asc
    asc, after = [], None
    for _ in range(50):
        _, _, page = jreq(p, "GET", "/v1/videos?order=asc&limit=100" + ("&after=" + after if after else ""), expect=200)
        asc += [d["id"] for d in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    check(asc == seen[::-1], "newest first is the reverse of oldest first")
    _, _, mid = jreq(p, "GET", "/v1/videos?limit=5&after=" + seen[1100], expect=200)
    check([d["id"] for d in mid["data"]] == seen[1101:1106], "desc cursor deep in the list")


# ------------------------------------------------------------------------------------------
# Image-to-video: input_reference / image / last_image


def make_image(tmp, name, color, size="64x48", fmt=None):
    """A real image file made by ffmpeg (lavfi color source): PNG, JPEG or WebP by suffix."""
    path = os.path.join(tmp, name)
    args = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=0x%06x:s=%s" % (color, size),
            "-frames:v", "1"]
    if name.endswith(".webp"):
        args += ["-c:v", "libwebp", "-lossless", "1"]
    subprocess.run(args + [path], check=True, timeout=30)
    return open(path, "rb").read()


def data_url(data, mime="image/png"):
    import base64
    return "data:%s;base64,%s" % (mime, base64.b64encode(data).decode())


def multipart(fields, files, boundary="vdgxB0undary"):
    """fields: {name: text}; files: {name: (filename, content_type, bytes)}."""
    out = b""
    for k, v in fields.items():
        out += ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)).encode()
    for k, (fname, ctype, data) in files.items():
        out += ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: %s\r\n\r\n'
                % (boundary, k, fname, ctype)).encode() + data + b"\r\n"
    return out + ("--%s--\r\n" % boundary).encode(), {"Content-Type": "multipart/form-data; boundary=%s" % boundary}


def frame_rgb(st, job_id, index, prefix="/jobs/", suffix="/download"):
    """The mean RGB of frame `index` of a job's MP4 (decoded by ffmpeg)."""
    status, _, data = request(st.port, "GET", prefix + job_id + suffix)
    check(status == 200 and data[4:8] == b"ftyp", "download %s: %d" % (job_id, status))
    path = os.path.join(st.tmp, job_id + ".mp4")
    open(path, "wb").write(data)
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-vf", "select=eq(n\\,%d)" % index,
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=30).stdout
    check(len(raw) > 0, "frame %d of %s decoded" % (index, job_id))
    n = len(raw) // 3
    return tuple(sum(raw[c::3]) / n for c in range(3))


def near(rgb, color, tol=12):
    want = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    return all(abs(a - b) <= tol for a, b in zip(rgb, want))


def queued_total(p):
    """Jobs the broker holds in any state (the whole store, via the paged list)."""
    _, _, lst = jreq(p, "GET", "/v1/videos?limit=100", expect=200)
    return len(lst["data"])


def t_images(st):
    p = st.port
    wait_worker(p, "testgen")
    wait_worker(p, "testgen-i2v")
    red, blue, green = 0xc83214, 0x1432c8, 0x20b040
    png = make_image(st.tmp, "red.png", red)
    jpeg = make_image(st.tmp, "blue.jpg", blue)
    webp = make_image(st.tmp, "green.webp", green)
    # /generate, JSON data URLs: the first frame is the image, the last frame last_image
    job = submit(p, model="testgen-i2v", frames=6, steps=1, image=data_url(png), last_image=data_url(jpeg, "image/jpeg"))
    check(wait_job(p, job)["state"] == "completed", "i2v job completed")
    check(near(frame_rgb(st, job, 0), red), "first frame is the image: %r" % (frame_rgb(st, job, 0),))
    check(near(frame_rgb(st, job, 5), blue), "last frame is last_image: %r" % (frame_rgb(st, job, 5),))
    # /generate, multipart with a file part
    body, hdrs = multipart({"model": "testgen-i2v", "prompt": "a form", "frames": "3", "steps": "1"},
                           {"image": ("g.webp", "image/webp", webp)})
    s, _, data = request(p, "POST", "/generate", body, hdrs)
    check(s == 202, "multipart /generate: %d %r" % (s, data[:300]))
    job = json.loads(data)["id"]
    check(wait_job(p, job)["state"] == "completed", "multipart i2v job")
    check(near(frame_rgb(st, job, 0), green), "webp first frame %r" % (frame_rgb(st, job, 0),))
    # /v1/videos: a multipart file part (as the OpenAI SDK sends it) and JSON {"image_url"}
    body, hdrs = multipart({"model": "testgen-i2v", "prompt": "sdk style", "seconds": "1", "size": "64x48"},
                           {"input_reference": ("cat.jpg", "image/jpeg", jpeg)})
    s, _, data = request(p, "POST", "/v1/videos", body, hdrs)
    check(s == 200, "multipart input_reference: %d %r" % (s, data[:300]))
    vid = json.loads(data)["id"]
    check(wait_job(p, vid, prefix="/v1/videos/")["status"] == "completed", "input_reference video")
    check(near(frame_rgb(st, vid, 0, "/v1/videos/", "/content"), blue), "input_reference is the first frame")
    _, _, v = jreq(p, "POST", "/v1/videos", {"model": "testgen-i2v", "prompt": "json", "seconds": "1",
                                              "input_reference": {"image_url": data_url(png)}}, expect=200)
    check(wait_job(p, v["id"], prefix="/v1/videos/")["status"] == "completed", "image_url video")

    # Refusals: each a 4xx naming the field, and nothing is queued.
    before = queued_total(p)
    big = bytearray(png[:33]) + os.urandom(4 * 1024 * 1024)            # over 4 MiB
    bomb = bytearray(png)
    bomb[16:24] = b"\x00\x01\x86\xa0\x00\x01\x86\xa0"                  # IHDR 100000x100000
    bad = [
        ("/generate", {"model": "testgen-i2v", "image": data_url(png[: len(png) // 2])}, 422, "invalid_image", "image", "truncated"),
        ("/generate", {"model": "testgen-i2v", "image": data_url(b"")}, 422, "invalid_image", "image", "empty"),
        ("/generate", {"model": "testgen-i2v", "image": data_url(b"GIF89a" + bytes(20), "image/gif")}, 422, "invalid_image", "image", "unsupported"),
        ("/generate", {"model": "testgen-i2v", "image": data_url(bytes(big))}, 413, "too_large", "image", "too large"),
        ("/generate", {"model": "testgen-i2v", "image": data_url(bytes(bomb))}, 413, "too_large", "image", "100000x100000"),
        ("/generate", {"model": "testgen-i2v", "image": data_url(png), "last_image": data_url(b"x" * 50)}, 422, "invalid_image", "last_image", "unsupported"),
        ("/generate", {"model": "testgen", "image": data_url(png)}, 422, "invalid_field", "image", "does not take an image"),
        ("/v1/videos", {"model": "testgen", "input_reference": data_url(png)}, 422, "invalid_field", "input_reference", "does not take an image"),
        ("/v1/videos", {"model": "testgen-i2v", "input_reference": "https://example.com/cat.png"}, 422, "invalid_image", "input_reference", "not fetched"),
    ]
    for path, fields, status, code, field, says in bad:
        fields = dict(fields, prompt="refused")
        s, _, e = jreq(p, "POST", path, fields)
        err = (e or {}).get("error", {})
        check(s == status and err.get("code") == code and err.get("field") == field and says in err.get("message", ""),
              "%s %s: %d %r" % (path, field, s, e))
    # the same through multipart file parts (an empty file, a corrupt one)
    for data, says in ((b"", "empty"), (png[:-20], "truncated"), (jpeg[:len(jpeg) // 2], "truncated")):
        body, hdrs = multipart({"model": "testgen-i2v", "prompt": "refused"}, {"input_reference": ("x.png", "image/png", data)})
        s, _, raw = request(p, "POST", "/v1/videos", body, hdrs)
        err = json.loads(raw)["error"]
        check(s == 422 and err["field"] == "input_reference" and says in err["message"], "multipart refusal %d %r" % (s, err))
    check(queued_total(p) == before, "nothing was queued by the refused requests")
    _, _, q = jreq(p, "GET", "/queue/status", expect=200)
    print("images: 4 image jobs made, %d refusals, queue %s" % (len(bad) + 3, json.dumps(q)[:200]))


SCENARIOS = {"images": t_images, "sdk_images": t_sdk_images, "sdk_wan_i2v": t_sdk_wan_i2v, "sse_resume": t_sse_resume, "webhooks": t_webhooks, "models": t_models, "paging": t_paging, "routes": t_routes, "download": t_download, "events": t_events, "videos": t_videos,
             "matrix": t_matrix, "auth": t_auth, "openapi": t_openapi, "promtool": t_promtool, "sdk": t_sdk,
             "broker_down": t_broker_down}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    name = sys.argv[1]
    extra = ["--chunk-bytes", "4096"] if name == "download" else []
    st = Stack(extra, broker_args=["--model", "idle", "--queue-max", "1205"] if name == "paging"
               else ["--model", "testgen-i2v"] if name in ("images", "sdk_images")
               else ["--model", "wan21-i2v-tiny"] if name == "sdk_wan_i2v" else [])
    if name in ("images", "sdk_images"):
        st.spawn("worker", [os.path.join(BIN, "vdgx-worker-test"), "--model", "testgen-i2v",
                            "--broker", st.broker_ep, "--data", os.path.join(st.tmp, "worker-i2v"),
                            "--heartbeat-ms", "200"])
    ok = False
    try:
        rc = SCENARIOS[name](st)
        for b in st.bridges:
            check(b.poll() is None, "a bridge died")
        ok = True
        print("bridge e2e %s: %s" % (name, "skipped" if rc == SKIP else "OK"))
        return rc or 0
    finally:
        st.close(keep=not ok)
        if ok and st.bad_exit:
            print(st.bad_exit)
            return 1


if __name__ == "__main__":
    sys.exit(main())

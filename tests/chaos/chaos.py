#!/usr/bin/env python3
"""Chaos tests: the real broker, test workers (engine testgen), the bridge and the `vdgx`
CLI, with processes killed, the disk filled and the job store damaged on purpose. Each
scenario asserts that no accepted job is lost or corrupted (every one ends `completed` with
an MP4 whose SHA-256 is the one recorded, or `failed` with a clear code) and that every
failure is reported where an operator looks (/info, /ready, `vdgx health`, metrics, exit
statuses, HTTP codes). Standard library only.

    chaos.py SCENARIO     worker_kill | broker_kill | disk_full | sync_failure | output_missing |
                          damaged_page | damaged_row | lost_wal
Counts come from the environment (defaults are the CI counts, trimmed to fit about two
minutes on two cores): CHAOS_WORKER_KILLS (default 20), CHAOS_BROKER_KILLS (default 5).
Exit 0 = pass, 77 = skipped (with the reason), anything else = fail.
"""
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bridge"))
from bridge_e2e import BIN, SKIP, bridge_env, bridge_port  # noqa: E402  (the bridge tests' helpers)

FINAL = ("completed", "failed", "cancelled", "expired")
# Heartbeats every 200 ms, a peer dead after 10 silent ones (2 s): a loaded machine can keep
# a live process off the CPU for most of a second, and a live worker expired there re-runs
# its job (attempt counts change).
LIVENESS = "10"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Stack:
    """A broker that can be killed and restarted on the same ports and data dir, test
    workers that can be killed and restarted, and optionally a bridge."""

    def __init__(self, data=None, workers=1, bridge=False, broker_args=(), worker_env=None):
        self.tmp = tempfile.mkdtemp(prefix="vdgx-chaos-")
        self.data = data or os.path.join(self.tmp, "broker")
        # Endpoints in our own temp dir: nothing else can take them between restarts.
        self.broker_ep = "ipc://%s/broker.ipc" % self.tmp
        self.events_ep = "ipc://%s/events.ipc" % self.tmp
        self.broker_args = ["--max-attempts", "50"] + list(broker_args)
        self.worker_env = dict(os.environ, VDGX_LOG_LEVEL="warn", **(worker_env or {}))
        self.logs = []
        self.procs = []
        self.broker = None
        self.broker_rc = None
        self.workers = []
        self.port = None
        self.start_broker()
        for _ in range(workers):
            self.start_worker()
        if bridge:
            self.start_bridge()

    def spawn(self, name, argv, env=None):
        path = os.path.join(self.tmp, "%s-%d.log" % (name, len(self.logs)))
        self.logs.append(path)
        p = subprocess.Popen(argv, stdout=open(path, "w"), stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def start_broker(self, extra=(), wait=True):
        self.broker = self.spawn("broker", [os.path.join(BIN, "vdgx-broker"), "--bind", self.broker_ep,
                                            "--events", self.events_ep, "--data", self.data,
                                            "--heartbeat-ms", "200", "--liveness", LIVENESS,
                                            "--model", "testgen"] + self.broker_args + list(extra))
        if wait:
            self.wait_broker()
        return self.broker

    def wait_broker(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.broker.poll() is not None:
                raise AssertionError("vdgx-broker exited with %d: %s" % (self.broker.returncode, self.tail(self.logs[-1])))
            if self.cli("--timeout", "0.3", "health", "--json").returncode in (0, 6):
                return
            time.sleep(0.05)
        raise AssertionError("the broker did not answer")

    def kill_broker(self):
        self.broker.send_signal(signal.SIGKILL)
        self.broker.wait()

    def start_worker(self, data=None):
        data = data or os.path.join(self.tmp, "worker%d" % len(self.workers))
        w = self.spawn("worker", [os.path.join(BIN, "vdgx-worker-test"), "--model", "testgen",
                                  "--broker", self.broker_ep, "--heartbeat-ms", "200", "--liveness", LIVENESS,
                                  "--data", data], env=self.worker_env)
        w.data = data
        self.workers.append(w)
        return w

    def start_bridge(self):
        p = self.spawn("bridge", [os.path.join(BIN, "vdgx-bridge"), "--listen", "127.0.0.1:0",
                                  "--broker", self.broker_ep, "--events", self.events_ep,
                                  "--request-timeout-ms", "3000"], env=bridge_env())
        self.port = bridge_port(p, self.logs[-1])

    def cli(self, *args, timeout=60):
        env = dict(os.environ, VDGX_BROKER=self.broker_ep, VDGX_EVENTS=self.events_ep)
        return subprocess.run([os.path.join(BIN, "vdgx")] + list(args), capture_output=True, text=True,
                              timeout=timeout, env=env)

    def submit(self, prompt, *extra):
        """The job id when the broker accepted the job, None when it did not (the CLI
        then says why)."""
        r = self.cli("--timeout", "2", "generate", prompt, "--model", "testgen", "--detach", "--steps", "3",
                     "--frames", "8", "--size", "64x48", *extra)
        if r.returncode == 0:
            job = r.stdout.strip().split()[-1]
            check(len(job) >= 16, "submit printed %r" % r.stdout)
            return job
        return None

    def status(self, job):
        r = self.cli("--timeout", "3", "status", job, "--json")
        check(r.returncode in (0, 1), "status %s: rc %d %s" % (job, r.returncode, r.stderr))
        return json.loads(r.stdout)

    def wait_all(self, jobs, timeout=120):
        deadline = time.time() + timeout
        left = set(jobs)
        done = {}
        while left and time.time() < deadline:
            for job in list(left):
                st = self.status(job)
                if st["state"] in FINAL:
                    done[job] = st
                    left.discard(job)
            if left:
                time.sleep(0.2)
        check(not left, "jobs not finished in %d s: %s" % (timeout, sorted(left)[:5]))
        return done

    def verify_outputs(self, done):
        """Every accepted job completed, and its file is the MP4 recorded at completion."""
        bad = {j: (s["state"], s.get("error")) for j, s in done.items() if s["state"] != "completed"}
        check(not bad, "jobs that did not complete: %r" % list(bad.items())[:5])
        for job, st in done.items():
            path = os.path.join(self.data, "out", job + ".mp4")
            blob = open(path, "rb").read()
            check(blob[4:8] == b"ftyp", "%s is not an MP4" % path)
            check(hashlib.sha256(blob).hexdigest() == st["result"]["sha256"], "%s: sha256 differs" % job)
            check(len(blob) == st["result"]["size"], "%s: size differs" % job)

    def http(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        hdrs = dict(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def tail(self, path, n=3000):
        try:
            return open(path, errors="replace").read()[-n:]
        except OSError:
            return ""

    def close(self, failed=False):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failed:
            for name in self.logs:
                sys.stderr.write("----- %s -----\n%s\n" % (name, self.tail(name)))
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Scenarios


def t_worker_kill(st):
    """SIGKILL a worker in the middle of a job, again and again: every job still completes
    once, with the right bytes."""
    kills = int(os.environ.get("CHAOS_WORKER_KILLS", "20"))
    for _ in range(2):
        st.start_worker()
    jobs = []

    def more(n):
        for _ in range(n):
            i = len(jobs)
            job = st.submit("chaos worker %d sleep_ms=100" % i, "--seed", str(i))
            check(job, "a submit was refused")
            jobs.append(job)
    more(10)
    killed = 0
    deadline = time.time() + 120
    while killed < kills and time.time() < deadline:
        r = st.cli("--timeout", "2", "workers", "--json")
        listed = json.loads(r.stdout)["workers"] if r.returncode == 0 else []
        busy = [w for w in listed if w.get("state") in ("busy", "loading")]
        pids = {int(w["pid"]) for w in busy if w.get("pid")}
        victims = [w for w in st.workers if w.poll() is None and w.pid in pids]
        if not victims:
            # Keep work in the queue so there is always a job to interrupt.
            if not busy:
                more(2)
            time.sleep(0.05)
            continue
        v = random.choice(victims)
        v.send_signal(signal.SIGKILL)
        v.wait()
        st.workers.remove(v)
        killed += 1
        st.start_worker(v.data)         # its successor sweeps what it left
        if killed % 5 == 0:
            more(5)
        time.sleep(0.1)
    check(killed == kills, "only %d of %d kills happened in time" % (killed, kills))
    done = st.wait_all(jobs)
    st.verify_outputs(done)
    attempts = sum(s.get("attempt", 1) for s in done.values())
    check(attempts >= len(jobs) + 1, "no job was ever re-run (attempts %d)" % attempts)
    # Nothing of a killed worker is left in the data folders (temp files, unsent results).
    live = {w.pid for w in st.workers if w.poll() is None}
    for d in {w.data for w in st.workers}:
        for name in os.listdir(d):
            m = re.match(r"^\.?[^.]+\.(\d+)\.mp4(\.tmp-.*)?$", name)
            check(not m or int(m.group(1)) in live, "%s/%s was left by a killed worker" % (d, name))
    print("worker_kill: %d kills, %d jobs completed, %d attempts" % (killed, len(jobs), attempts))


def t_broker_kill(st):
    """SIGKILL the broker and restart it while a submitter keeps submitting: every job the
    broker accepted (a job id came back) completes, none twice, none lost."""
    kills = int(os.environ.get("CHAOS_BROKER_KILLS", "5"))
    accepted, refused = [], [0]
    stop = threading.Event()

    def submitter():
        i = 0
        while not stop.is_set():
            job = st.submit("chaos broker %d sleep_ms=20" % i, "--seed", str(i))
            if job:
                accepted.append(job)
            else:
                refused[0] += 1
            i += 1
    th = threading.Thread(target=submitter)
    th.start()
    try:
        for k in range(kills):
            time.sleep(1.0)
            st.kill_broker()
            time.sleep(0.3)
            st.start_broker()
    finally:
        time.sleep(0.5)
        stop.set()
        th.join()
    check(len(accepted) >= kills, "too few submits got through (%d)" % len(accepted))
    check(len(set(accepted)) == len(accepted), "a job id came back twice")
    done = st.wait_all(accepted)
    st.verify_outputs(done)
    r = st.cli("list", "--json", "--limit", "1000")
    listed = {j["id"] for j in json.loads(r.stdout)["jobs"]}
    check(set(accepted) <= listed, "accepted jobs missing from the list")
    print("broker_kill: %d kills, %d jobs accepted and completed, %d submits refused while it was down"
          % (kills, len(accepted), refused[0]))


def t_disk_full(st):
    """The data dir is a small tmpfs; it is filled while jobs run. The job must not be
    re-dispatched in a loop; /info, /ready, vdgx health and the metrics say the store is
    degraded; submits get 503 + Retry-After; space back: it recovers by itself and every
    accepted job completes."""
    job0 = st.submit("before sleep_ms=10")
    st.wait_all([job0])
    filler = os.path.join(st.data, "filler")
    running = [st.submit("during %d sleep_ms=150" % i, "--seed", str(i)) for i in range(3)]
    check(all(running), "submits before the disk filled")
    fill(filler)
    # The next output write (or probe) fails: the store is degraded within a few seconds.
    info = wait_store(st, "degraded")
    check(info["broker"]["store"]["reason"], "no reason in /info")
    status, _, body = st.http("GET", "/ready")
    check(status == 503 and json.loads(body)["store"] == "degraded", "/ready: %d %r" % (status, body))
    status, hdrs, body = st.http("POST", "/generate", {"model": "testgen", "prompt": "while full"})
    check(status == 503 and int(hdrs.get("retry-after", "0")) >= 1, "submit while full: %d %r %r" % (status, hdrs, body))
    check(b"store" in body, "the 503 does not say why: %r" % body)
    r = st.cli("health")
    check(r.returncode == 6 and "degraded" in r.stdout, "vdgx health: %d %s" % (r.returncode, r.stdout))
    _, _, metrics = st.http("GET", "/metrics")
    check(b"vdgx_store_degraded 1" in metrics, "metrics do not show the degraded store")
    # No dispatch loop: the attempt counts stay small while the disk is full.
    time.sleep(2)
    for job in running:
        s = st.status(job)
        check(s["attempt"] <= 2 and s["state"] in ("queued", "running", "completed"),
              "job %s while full: %r" % (job, s))
    os.unlink(filler)
    wait_store(st)
    _, _, metrics = st.http("GET", "/metrics")
    check(b"vdgx_store_degraded 0" in metrics, "metrics after recovery")
    after = st.submit("after sleep_ms=10")
    check(after, "submit after recovery refused")
    done = st.wait_all(running + [job0, after])
    st.verify_outputs(done)
    print("disk_full: degraded, 503 + Retry-After, recovered; %d jobs completed" % len(done))


def t_sync_failure(st):
    """A real failed fsync: the data dir is an ext2 file system on a loop device whose
    backing file lies on a small tmpfs (a thin-provisioned disk). Free blocks are trimmed
    (holes in the backing file) and the tmpfs is filled: write() still succeeds (the page
    cache), but writing back a new block fails, so the syncer's fsync of the WAL returns an
    error. The submit whose batch that was must get 503 + Retry-After, never a success;
    the store is degraded with the reason; a job that completes meanwhile is not reported
    (its status is refused) and its worker's result is kept; a delete is refused and its
    output stays; space back: the store recovers by itself, the output goes, the refused submit retried with its idempotency key is one job,
    and every job completes with its file."""
    job0 = st.submit("before sleep_ms=10")
    st.wait_all([job0])
    # A reader holds the WAL until the disk has failed: the checkpoint timer (TRUNCATE,
    # every 2 s) cannot empty it, so the refused submit's frames are appended past its end,
    # into blocks the full disk cannot write back, and the syncer's fsync fails. (Were the
    # WAL emptied just before, SQLite's own sync of the new WAL header would fail instead,
    # inside the COMMIT: a failed commit, not the failed fsync this scenario is about.)
    reader = sqlite3.connect("file:%s?mode=ro" % os.path.join(st.data, "jobs.db"), uri=True,
                             isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM jobs").fetchone()
    # Keeps the only worker busy while the disk fails (its first step waits for `go`), so
    # the refused job stays queued and the busy one completes only when the test says.
    go = os.path.join(st.tmp, "go")
    busy = st.submit("busy hold=%s" % go, "--seed", "7")
    check(busy, "submit before the failure")
    wait_until(lambda: st.status(busy)["state"] == "running", "the busy job runs")
    r = subprocess.run(["fstrim", st.mnt_fs], capture_output=True, text=True)
    check(r.returncode == 0, "fstrim: %s" % r.stderr)
    fill(os.path.join(st.mnt_backing, "filler"))
    # The first submit whose frames need a block the disk cannot write back fails; one that
    # still found blocks the file system had kept for the WAL (its preallocation, not
    # trimmed) really is durable: it is accepted, and must complete like any other.
    accepted = []
    for i in range(50):
        req = {"model": "testgen", "prompt": "refused sleep_ms=10", "idempotency_key": "sync-failure-%d" % i,
               "width": 64, "height": 48, "frames": 8, "steps": 3}
        status, hdrs, body = st.http("POST", "/generate", req)
        if status != 202:
            break
        accepted.append(json.loads(body)["id"])
    check(status == 503 and int(hdrs.get("retry-after", "0")) >= 1,
          "submit in a batch whose fsync failed: %d %r %r" % (status, hdrs, body))
    check(b"fsync" in body or b"store" in body, "the 503 does not say why: %r" % body)
    _, _, body = st.http("GET", "/info")
    info = json.loads(body)
    # Degraded, first by the failed fsync (the broker logs the first fault; /info shows the
    # latest reason, which the recovery probe, every second, may have replaced by its own).
    check(info.get("store") == "degraded" and info["broker"]["store"]["reason"],
          "/info after a failed fsync: %r" % info)
    first = re.findall(r'store\.degraded reason="([^"]*)"', st.tail(st.logs[0], 1 << 20))
    check(first and "fsync" in first[0], "the first fault logged: %r" % first)
    _, _, metrics = st.http("GET", "/metrics")
    m = re.search(rb"vdgx_store_sync_failures_total (\d+)", metrics)
    check(m and int(m.group(1)) >= 1, "no sync failure counted")
    reader.execute("COMMIT")
    reader.close()
    # The busy job finishes (its worker's result taken) while the store cannot sync: it is
    # not reported completed.
    open(go, "w").close()

    def busy_done():
        r = st.cli("--timeout", "3", "workers", "--json")
        return r.returncode == 0 and all(w.get("job") != busy for w in json.loads(r.stdout)["workers"])
    wait_until(busy_done, "the worker finishes the busy job")
    r = st.cli("--timeout", "3", "status", busy, "--json")
    check(r.returncode != 0 or json.loads(r.stdout)["state"] != "completed",
          "a completion that is not durable was reported: %s" % r.stdout)
    status, hdrs, _ = st.http("GET", "/jobs/" + busy)
    check(status == 503 and hdrs.get("retry-after"), "GET /jobs while unsynced: %d" % status)
    # A delete while no batch is durable: refused, and its output stays until it is.
    gone = os.path.join(st.data, "out", job0 + ".mp4")
    status, _, _ = st.http("DELETE", "/v1/videos/" + job0)
    check(status == 503, "DELETE while unsynced: %d" % status)
    time.sleep(0.5)
    check(os.path.exists(gone), "the output of a delete that is not durable was removed")
    os.unlink(os.path.join(st.mnt_backing, "filler"))
    wait_store(st)
    # Recovered: the delete was made durable (checkpoint), then its output removed.
    check(not os.path.exists(gone), "the deleted job's output is still there after recovery")
    status, _, _ = st.http("GET", "/jobs/" + job0)
    check(status == 404, "the deleted job after recovery: %d" % status)
    status, _, body = st.http("POST", "/generate", req)
    check(status == 202, "the retried submit: %d %r" % (status, body))
    refused = json.loads(body)["id"]
    status, _, body = st.http("POST", "/generate", req)
    check(status == 202 and json.loads(body)["id"] == refused, "the idempotency key made a second job")
    after = st.submit("after sleep_ms=10")
    check(after, "submit after recovery refused")
    done = st.wait_all([busy, refused, after] + accepted)
    st.verify_outputs(done)
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(st.data, "jobs.db"), uri=True)
    n = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    db.close()
    check(n == 3 + len(accepted), "%d jobs in the store, %d expected" % (n, 3 + len(accepted)))
    print("sync_failure: fsync failed (thin disk) after %d durable submits, 503 + Retry-After, completion held,"
          " delete's output kept until durable, recovered; %d jobs completed, the refused submit once"
          % (len(accepted), len(done)))


def wait_until(cond, what, timeout=60):
    """Waits until cond() holds (polling), at most timeout seconds."""
    deadline = time.time() + timeout
    while not cond():
        check(time.time() < deadline, "%s: not within %d s" % (what, timeout))
        time.sleep(0.05)


def wait_store(st, state="ok", timeout=60):
    """Waits until /info says the store is state ("ok": it recovered by itself); the info."""
    deadline = time.time() + timeout
    info = {}
    while time.time() < deadline:
        _, _, body = st.http("GET", "/info")
        info = json.loads(body)
        if info.get("store") == state:
            return info
        time.sleep(0.1)
    raise AssertionError("/info does not say the store is %s: %r" % (state, info.get("broker", {}).get("store")))


def fill(path):
    """Writes path until its file system is full, to the last byte."""
    with open(path, "wb", buffering=0) as f:
        for block in (65536, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError:
                pass


def t_output_missing(st):
    """A completed job whose file is deleted, truncated or changed: 410 and failed:
    output_missing, never a 200 with the wrong bytes."""
    jobs = [st.submit("out %d" % i, "--seed", str(i)) for i in range(3)]
    done = st.wait_all(jobs)
    st.verify_outputs(done)
    gone, short, changed = jobs
    os.unlink(os.path.join(st.data, "out", gone + ".mp4"))
    with open(os.path.join(st.data, "out", short + ".mp4"), "r+b") as f:
        f.truncate(100)
    path = os.path.join(st.data, "out", changed + ".mp4")
    blob = bytearray(open(path, "rb").read())
    blob[-1] ^= 0xff
    open(path, "wb").write(bytes(blob))
    for job in jobs:
        for route in ("/v1/videos/%s/content" % job, "/v1/videos/%s/content?variant=thumbnail" % job,
                      "/jobs/%s/download" % job):
            status, _, body = st.http("GET", route)
            check(status == 410 and b"output_missing" in body, "%s: %d %r" % (route, status, body[:200]))
        s = st.status(job)
        check(s["state"] == "failed" and s["error"]["code"] == "output_missing", "status: %r" % s)
    r = st.cli("download", gone, "-o", os.path.join(st.tmp, "x.mp4"))
    check(r.returncode != 0 and "missing" in r.stderr, "vdgx download: %d %s" % (r.returncode, r.stderr))
    print("output_missing: deleted, truncated and changed outputs all answer 410")


def s_stop(st):
    st.broker.send_signal(signal.SIGTERM)
    st.broker.wait()


def t_damaged_page(st):
    """A page of jobs.db scribbled over: the broker refuses to start and says so; with
    --salvage it starts, moves the unreadable rows aside and says how many."""
    jobs = [st.submit("page %d" % i, "--seed", str(i)) for i in range(40)]
    st.wait_all(jobs)
    s_stop(st)
    db = os.path.join(st.data, "jobs.db")
    size = os.path.getsize(db)
    pages = size // 4096
    check(pages > 4, "the store is too small to damage (%d pages)" % pages)
    with open(db, "r+b") as f:
        f.seek((pages // 2) * 4096)
        f.write(bytes(random.getrandbits(8) for _ in range(4096)))
    b = st.start_broker(wait=False)
    rc = b.wait(timeout=20)
    log = st.tail(st.logs[-1])
    check(rc != 0 and "--salvage" in log and "damaged" in log, "start on a damaged store: rc %d %s" % (rc, log))
    st.start_broker(extra=["--salvage"])
    time.sleep(0.3)
    log = st.tail(st.logs[-1])
    check("salvage" in log and "moved aside" in log, "salvage report: %s" % log)
    r = st.cli("list", "--json", "--limit", "1000")
    check(r.returncode == 0, "vdgx list after salvage: %s" % r.stderr)
    kept = json.loads(r.stdout)["jobs"]
    check(0 < len(kept) <= len(jobs), "jobs after salvage: %d" % len(kept))
    check(any(n.startswith("jobs.db.damaged-") for n in os.listdir(st.data)), "the damaged file is not kept")
    job = st.submit("after salvage")
    st.verify_outputs(st.wait_all([job]))
    print("damaged_page: refused, then salvaged: %d of %d jobs kept" % (len(kept), len(jobs)))


def t_damaged_row(st):
    """One row with nonsense in it (a state no code knows, a request that does not decode):
    the list and the other jobs still work; the bad row reads as failed, named."""
    jobs = [st.submit("row %d" % i, "--seed", str(i)) for i in range(5)]
    st.wait_all(jobs)
    s_stop(st)
    con = sqlite3.connect(os.path.join(st.data, "jobs.db"))
    con.execute("UPDATE jobs SET state='zz', request=x'c1c1', result=x'c1' WHERE id=?", (jobs[2],))
    con.execute("UPDATE jobs SET model=CAST(x'ff41' AS TEXT), err_msg=CAST(x'c3' AS TEXT) WHERE id=?", (jobs[3],))
    con.commit()
    con.close()
    st.start_broker()
    r = st.cli("list", "--json", "--limit", "100")
    check(r.returncode == 0, "vdgx list with a bad row: %d %s" % (r.returncode, r.stderr))
    listed = {j["id"]: j for j in json.loads(r.stdout)["jobs"]}
    check(set(jobs) <= set(listed), "jobs missing from the list")
    for bad in jobs[2:4]:
        check(listed[bad]["state"] == "failed", "the bad row reads as %r" % listed[bad])
        s = st.status(bad)
        check(s["error"]["code"] == "internal" and "damaged" in s["error"]["message"], "bad row status %r" % s)
    status, _, body = st.http("GET", "/v1/videos?limit=100")
    check(status == 200, "GET /v1/videos with bad rows: %d %r" % (status, body[:300]))
    check(len(json.loads(body)["data"]) == len(jobs), "/v1/videos lists %r" % body[:300])
    status, _, body = st.http("GET", "/v1/videos/%s/content" % jobs[2])
    check(status in (409, 410), "content of a damaged row: %d %r" % (status, body[:200]))
    good = [j for j in jobs if j not in jobs[2:4]]
    st.verify_outputs({j: st.status(j) for j in good})
    job = st.submit("after the damage")
    st.verify_outputs(st.wait_all([job]))
    print("damaged_row: list and /v1/videos answer, the bad row reads as failed")


def t_lost_wal(st):
    """The -wal file deleted (and truncated) after a crash: frequent checkpoints mean the
    main file already holds every job accepted more than a few seconds before."""
    for case in ("deleted", "truncated"):
        jobs = [st.submit("wal %s %d" % (case, i), "--seed", str(i)) for i in range(20)]
        st.wait_all(jobs)
        time.sleep(2.5)          # more than the checkpoint interval (2 s)
        st.kill_broker()
        wal = os.path.join(st.data, "jobs.db-wal")
        if case == "deleted":
            if os.path.exists(wal):
                os.unlink(wal)
        elif os.path.exists(wal):
            with open(wal, "r+b") as f:
                f.truncate(os.path.getsize(wal) // 2)
        st.start_broker()
        r = st.cli("list", "--json", "--limit", "1000")
        listed = {j["id"] for j in json.loads(r.stdout)["jobs"]}
        missing = [i for i, j in enumerate(jobs) if j not in listed]
        check(not missing, "%s -wal: jobs %s of %d lost" % (case, missing, len(jobs)))
        done = st.wait_all(jobs, timeout=30)
        st.verify_outputs(done)
    print("lost_wal: 40 jobs survived a deleted and a truncated -wal")


def mount_thin(backing, fs):
    """An ext2 file system at fs on a loop device whose sparse 128 MiB backing file lies
    on a 24 MiB tmpfs at backing. Returns (loop device, None) or (None, reason)."""
    why = mount_tmpfs(backing, "24m")
    if why:
        return None, why
    img = os.path.join(backing, "disk.img")
    with open(img, "wb") as f:
        f.truncate(128 << 20)
    r = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True)
    if r.returncode:
        subprocess.run(["umount", backing])
        return None, r.stderr.strip() or "losetup failed"
    loop = r.stdout.strip()
    os.makedirs(fs, exist_ok=True)
    # 4 KiB blocks, the tmpfs's page: a trimmed free block is then a whole hole in the
    # backing file (mkfs picks 1 KiB blocks for a disk this small, and a trimmed 1 KiB block
    # sharing a page with data stays backed, so writing it back could still succeed).
    for argv in (["mkfs.ext2", "-q", "-b", "4096", loop], ["mount", "-o", "errors=continue", loop, fs]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode:
            subprocess.run(["losetup", "-d", loop])
            subprocess.run(["umount", backing])
            return None, "%s: %s" % (argv[0], r.stderr.strip())
    return loop, None


def mount_tmpfs(path, size):
    """Mounts a tmpfs of size at path; returns a reason when that is not permitted."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or "mount failed")


SCENARIOS = {
    "worker_kill": (t_worker_kill, {}),
    "broker_kill": (t_broker_kill, {"workers": 2}),
    "disk_full": (t_disk_full, {"bridge": True}),
    "sync_failure": (t_sync_failure, {"bridge": True}),
    "output_missing": (t_output_missing, {"bridge": True}),
    "damaged_page": (t_damaged_page, {}),
    "damaged_row": (t_damaged_row, {"bridge": True}),
    "lost_wal": (t_lost_wal, {}),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    name = sys.argv[1]
    fn, kw = SCENARIOS[name]
    data, mnt = None, None
    if name == "disk_full":
        mnt = tempfile.mkdtemp(prefix="vdgx-chaos-tmpfs-")
        why = mount_tmpfs(mnt, "4m")
        if why:
            os.rmdir(mnt)
            print("disk_full: SKIPPED: cannot mount a tmpfs to fill (%s); run as root, or in a"
                  " container with CAP_SYS_ADMIN" % why)
            return SKIP
        data = os.path.join(mnt, "broker")
    loop = backing = None
    if name == "sync_failure":
        backing = tempfile.mkdtemp(prefix="vdgx-chaos-backing-")
        mnt = tempfile.mkdtemp(prefix="vdgx-chaos-thin-")
        loop, why = mount_thin(backing, mnt)
        if why:
            os.rmdir(mnt)
            os.rmdir(backing)
            print("sync_failure: SKIPPED: cannot make a loop device on a tmpfs (%s); run as root,"
                  " or in a container with CAP_SYS_ADMIN and /dev/loop*" % why)
            return SKIP
        data = os.path.join(mnt, "broker")
    st = None
    failed = True
    try:
        st = Stack(data=data, **kw)
        st.mnt_fs, st.mnt_backing = mnt, backing
        fn(st)
        failed = False
        return 0
    finally:
        if st:
            st.close(failed)
        if mnt:
            subprocess.run(["umount", "-l", mnt])
            os.rmdir(mnt)
        if loop:
            subprocess.run(["losetup", "-d", loop])
        if backing:
            subprocess.run(["umount", "-l", backing])
            os.rmdir(backing)


if __name__ == "__main__":
    sys.exit(main())

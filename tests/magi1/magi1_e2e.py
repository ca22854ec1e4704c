#!/usr/bin/env python3
"""End-to-end tests of MAGI-1 streaming: the real vdgx-broker, real `vdgx-worker --model
magi1-tiny` processes (a tiny checkpoint made by `vdgx-worker --make-tiny-checkpoint DIR
--model magi1-tiny`) and vdgx-bridge, on loopback ports. Standard library only (+ ffprobe).

    magi1_e2e.py stream     a 3-chunk job: the first chunk is downloadable (GET
                            /jobs/{id}/download and /v1/videos/{id}/content, X-Video-Partial)
                            and plays (ffprobe: 24 frames) before the job ends; SSE announces
                            each chunk; `vdgx generate --stream` writes the file as it grows;
                            the final MP4 has every frame (72) and starts with the streamed bytes
    magi1_e2e.py failover   the worker running a 3-chunk job is killed (SIGKILL) after its
                            first chunk was streamed: the job runs again on another worker
                            from the start (attempt 2), its ready part restarts, and the
                            client still gets the whole video (72 frames)
Exit 0 = pass, 77 = skipped (ffprobe missing), anything else = fail.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bridge"))
import bridge_e2e as b  # noqa: E402  (Stack, request, jreq, check, read_sse)

SKIP = 77
CHUNK = 24
STEPS = 64          # 6 stages of 16 steps: the first chunk is clean after 4 of them


def ffprobe_frames(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames,width,height,r_frame_rate,codec_name",
                          "-of", "json", path], capture_output=True, text=True, timeout=60)
    b.check(out.returncode == 0, "ffprobe %s: %s" % (path, out.stderr[-500:]))
    s = json.loads(out.stdout)["streams"][0]
    return int(s["nb_read_frames"]), s


def make_stack(workers=1):
    # heartbeats of 500 ms (not 200): a loaded machine running sanitizer builds must not take
    # a slow beat for a dead peer; a killed worker is still noticed within 1.5 s
    st = b.Stack(worker=False, broker_args=["--model", "magi1-tiny", "--heartbeat-ms", "500"])
    weights = os.path.join(st.tmp, "tiny")
    mk = subprocess.run([os.path.join(b.BIN, "vdgx-worker"), "--make-tiny-checkpoint", weights,
                         "--model", "magi1-tiny"], capture_output=True, text=True, timeout=120)
    b.check(mk.returncode == 0, "make-tiny-checkpoint: %s" % mk.stderr[-500:])
    st.weights = weights
    st.workers = [start_worker(st, i) for i in range(workers)]
    wait_workers(st, workers)
    return st


def start_worker(st, i):
    return st.spawn("worker%d" % i, [os.path.join(b.BIN, "vdgx-worker"), "--model", "magi1-tiny",
                                     "--weights", st.weights, "--broker", st.broker_ep,
                                     "--data", os.path.join(st.tmp, "worker%d" % i),
                                     "--threads", "2", "--heartbeat-ms", "500"])


def wait_workers(st, n, timeout=30):
    """Waits until the broker has n live magi1-tiny workers (vdgx models --json)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run([os.path.join(b.BIN, "vdgx"), "--broker", st.broker_ep, "models", "--json"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            models = json.loads(out.stdout)
            models = models.get("models", models) if isinstance(models, dict) else models
            for m in models:
                if m.get("name") == "magi1-tiny" and m.get("workers", 0) >= n:
                    return
        time.sleep(0.2)
    raise AssertionError("%d magi1-tiny workers did not register" % n)


def submit(st, seconds=3, seed=5):
    body = {"model": "magi1-tiny", "prompt": "a lighthouse on a cliff in a storm", "seconds": seconds,
            "width": 32, "height": 32, "steps": STEPS, "seed": seed, "no_cache": True}
    _, _, obj = b.jreq(st.port, "POST", "/generate", body, expect=202)
    return obj["id"]


def job(st, job_id):
    return b.jreq(st.port, "GET", "/jobs/" + job_id, expect=200)[2]


def wait_ready(st, job_id, seconds, timeout=120):
    """Polls until the job runs with at least `seconds` ready; returns its status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = job(st, job_id)
        if j["state"] != "running" and j["state"] != "queued":
            raise AssertionError("job ended before %g s were ready: %r" % (seconds, j))
        if j["state"] == "running" and j.get("ready_seconds", 0) >= seconds:
            return j
        time.sleep(0.03)
    raise AssertionError("no %g s ready in time" % seconds)


def download(st, path, out):
    status, hdrs, data = b.request(st.port, "GET", path)
    b.check(status == 200, "GET %s: %d %r" % (path, status, data[:200]))
    with open(out, "wb") as f:
        f.write(data)
    return hdrs, data


def t_stream(st):
    p = st.port
    job_id = submit(st)
    # SSE in the background: a chunk event per chunk, then the final state.
    events = []
    reader = threading.Thread(target=lambda: events.extend(b.read_sse(p, "/jobs/%s/events" % job_id, timeout=180)))
    reader.start()
    first = wait_ready(st, job_id, 1)
    b.check(first["ready_frames"] >= CHUNK and first["ready_frames"] % CHUNK == 0, "whole chunks: %r" % first)
    b.check(first["ready_seconds"] == first["ready_frames"] / 24.0, "seconds of the ready frames: %r" % first)
    part = os.path.join(st.tmp, "part.mp4")
    hdrs, data = download(st, "/jobs/%s/download" % job_id, part)
    b.check(hdrs.get("x-video-partial") == "true", "served as the ready part: %r" % hdrs)
    b.check(len(data) >= first["ready_bytes"], "at least the ready bytes")
    frames, info = ffprobe_frames(part)
    b.check(frames % CHUNK == 0 and frames >= CHUNK, "the ready part plays whole chunks: %d" % frames)
    b.check(info["width"] == 32 and info["height"] == 32 and info["r_frame_rate"] == "24/1", "%r" % info)
    after = job(st, job_id)
    print("first chunk: %d bytes, %d frames playable while the job was %s (%g s ready of 3)"
          % (len(data), frames, after["state"], first["ready_seconds"]))
    # The OpenAI-style route serves the same growing prefix, with a Range too.
    hdrs2, data2 = download(st, "/v1/videos/%s/content" % job_id, os.path.join(st.tmp, "part2.mp4"))
    b.check(data2[:len(data)] == data[:len(data2)], "the two routes serve one file")
    status, rh, rdata = b.request(st.port, "GET", "/jobs/%s/download" % job_id, headers={"Range": "bytes=0-99"})
    b.check(status in (200, 206) and rdata[:100] == data[:100], "a range of the ready part")
    # The CLI follows along: vdgx generate --stream writes the file as it grows.
    cli_out = os.path.join(st.tmp, "cli.mp4")
    cli = subprocess.Popen([os.path.join(b.BIN, "vdgx"), "--broker", st.broker_ep, "--events", st.events_ep,
                            "generate", "a harbour at dawn", "--model", "magi1-tiny", "--seconds", "3",
                            "--size", "32x32", "--steps", str(STEPS), "--seed", "9", "--no-cache",
                            "--stream", "-o", cli_out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Meanwhile the first job ends with every frame.
    final = b.wait_job(p, job_id, timeout=180)
    b.check(final["state"] == "completed", "completed: %r" % final)
    b.check("ready_bytes" not in final, "no ready part once completed")
    whole = os.path.join(st.tmp, "whole.mp4")
    _, wdata = download(st, "/jobs/%s/download" % job_id, whole)
    frames, _ = ffprobe_frames(whole)
    b.check(frames == 3 * CHUNK, "the final MP4 has every frame: %d" % frames)
    b.check(wdata[:len(data)] == data, "the final file starts with the bytes streamed before")
    reader.join(timeout=60)
    chunks = [e[1] for e in events if e[0] == "chunk"]
    b.check([c["ready_frames"] for c in chunks] == [24, 48, 72], "a chunk event per chunk: %r" % chunks)
    b.check(all(c["state"] == "running" for c in chunks), "chunk events while running")
    b.check(events and events[-1][0] == "state" and events[-1][1]["state"] == "completed", "ends completed")
    out, err = cli.communicate(timeout=180)
    b.check(cli.returncode == 0, "vdgx generate --stream: %d %s" % (cli.returncode, err[-800:]))
    lines = [ln for ln in err.splitlines() if ln.startswith("stream:")]
    b.check(len(lines) >= 1 and "1.00 s ready" in lines[0], "the CLI wrote the first chunk first: %r" % lines)
    frames, _ = ffprobe_frames(cli_out)
    b.check(frames == 3 * CHUNK, "the CLI's file has every frame: %d" % frames)
    print("vdgx generate --stream: %s; final %d frames" % ("; ".join(lines), frames))
    return 0


def t_failover(st):
    p = st.port
    job_id = submit(st, seed=6)
    first = wait_ready(st, job_id, 1)
    b.check(first["attempt"] == 1, "attempt 1: %r" % first)
    part = os.path.join(st.tmp, "attempt1.mp4")
    download(st, "/jobs/%s/download" % job_id, part)
    # A second worker joins; the one running the job dies without a word.
    st.workers.append(start_worker(st, 1))
    wait_workers(st, 2)
    st.workers[0].send_signal(signal.SIGKILL)
    st.workers[0].wait()
    print("worker 0 killed with %g s of attempt 1 ready" % first["ready_seconds"])
    # The broker notices (heartbeats), the job runs again from the start on worker 1: its
    # ready part starts over under attempt 2.
    deadline = time.time() + 120
    seen2 = None
    while time.time() < deadline:
        j = job(st, job_id)
        if j["attempt"] >= 2 and j["state"] == "running" and j.get("ready_seconds", 0) > 0:
            seen2 = j
            break
        if j["state"] == "completed":
            break
        time.sleep(0.03)
    final = b.wait_job(p, job_id, timeout=180)
    b.check(final["state"] == "completed" and final["attempt"] == 2, "completed on attempt 2: %r" % final)
    if seen2:
        b.check(seen2["ready_frames"] <= 3 * CHUNK, "attempt 2 streamed its own chunks: %r" % seen2)
    whole = os.path.join(st.tmp, "whole.mp4")
    download(st, "/v1/videos/%s/content" % job_id, whole)
    frames, _ = ffprobe_frames(whole)
    b.check(frames == 3 * CHUNK, "the client gets the whole video: %d frames" % frames)
    print("re-run from the start on worker 1 (attempt %d): %d frames%s" % (
        final["attempt"], frames, ", streamed again while running" if seen2 else ""))
    return 0


SCENARIOS = {"stream": t_stream, "failover": t_failover}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    if subprocess.run(["which", "ffprobe"], capture_output=True).returncode != 0:
        print("ffprobe not found: skipped")
        return SKIP
    name = sys.argv[1]
    st = make_stack()
    ok = False
    try:
        rc = SCENARIOS[name](st)
        ok = True
        print("magi1 e2e %s: OK" % name)
        return rc
    finally:
        st.close(keep=not ok)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Server test: streamed batches (Server-Sent Events), job ids, progress events during a long
commit, a disconnect after N events and a resume with Last-Event-ID (no gap, no duplicate, also
after a server restart), a slow reader (the job pauses, server RSS stays bounded), and reads
served while a long commit runs.

Usage: sse_test.py BUILD/engram
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import Server, check, finish, sse_events, tmpdir, vec  # noqa: E402

binary = sys.argv[1]
d = tmpdir()
db = os.path.join(d, "sse.db")
DIM = 16
QUEUE = 32
srv = Server(binary, db, "--queue-events", str(QUEUE))


def open_stream(path, body=None, headers=None, rcvbuf=None):
    c = srv.conn(timeout=60)
    if rcvbuf:
        c.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if body is not None:
        c.request("POST", path, body=json.dumps(body), headers=headers or {})
    else:
        c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return c, r


def job_status(job):
    st, b, _ = srv.request("GET", f"/batch/jobs/{job}")
    return b


def wait_done(job, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = job_status(job)
        if s["state"] == "done":
            return s
        time.sleep(0.05)
    return job_status(job)


try:
    srv.request("POST", "/tables", {"name": "mem", "options": {"dim": DIM, "dedup": "off"}})
    N_STORE, N_SIM = 200, 300
    ops = [{"store": {"id": f"s{i}", "embedding": vec(i, DIM)}} for i in range(N_STORE)]
    ops += [{"similarity": {"embedding": vec(i, DIM), "k": 3}} for i in range(N_SIM)]
    ops[5] = {"store": {"id": "bad", "embedding": [1, 2]}}  # a failing operation mid-stream
    N = len(ops)

    # ---- stream, disconnect after 100 events -----------------------------------------------
    c, r = open_stream("/batch/operations", {"table": "mem", "operations": ops, "stream_response": True})
    check(r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream"),
          f"stream status {r.status} {r.getheader('Content-Type')}")
    job = r.getheader("X-Engram-Job")
    first = []
    events = sse_events(r)
    ev, eid, data = next(events)
    check(ev == "job" and eid is None and json.loads(data)["job"] == job and json.loads(data)["operations"] == N,
          f"first event names the job: {ev} {data}")
    for ev, eid, data in events:
        if ev == "batch_result":
            first.append((int(eid), json.loads(data)))
            if len(first) == 100:
                break
    c.close()  # disconnect mid-stream
    check([i for i, _ in first] == list(range(100)), "ids 0..99 in order before the disconnect")
    check(first[5][1]["status"] == "error" and first[5][1]["error"]["operation"] == 5, "per-operation error streamed")
    s = wait_done(job)
    check(s["state"] == "done" and s["events_written"] == N, f"the job finished after the disconnect: {s}")
    check(s["report"]["store"]["stored"] == N_STORE - 1, f"its stores committed: {s['report']}")

    # ---- resume with Last-Event-ID: exactly the events after it ------------------------------
    c, r = open_stream(f"/batch/stream?job={job}", headers={"Last-Event-ID": "99"})
    rest, done = [], None
    for ev, eid, data in sse_events(r):
        if ev == "batch_result":
            rest.append((int(eid), json.loads(data)))
        elif ev == "done":
            done = (int(eid), json.loads(data))
    c.close()
    ids = [i for i, _ in first] + [i for i, _ in rest]
    check(ids == list(range(N)), f"no gap, no duplicate: {len(ids)} ids, first resumed {rest[0][0] if rest else None}")
    check(done is not None and done[0] == N and done[1]["succeeded"] == N - 1 and done[1]["failed"] == 1,
          f"done event {done}")
    # results of the resumed stream equal a full replay
    c, r = open_stream(f"/batch/stream?job={job}")
    replay = [(int(eid), json.loads(data)) for ev, eid, data in sse_events(r) if ev == "batch_result"]
    c.close()
    check(replay == first + rest, "replay equals the streamed results")
    sim = dict(replay)[N_STORE + 7]
    check(sim["results"][0]["id"] == "s7", f"similarity after the stores of the request: {sim}")

    # resuming after the last event: nothing more
    c, r = open_stream(f"/batch/stream?job={job}", headers={"Last-Event-ID": str(N)})
    after = [ev for ev, _, _ in sse_events(r)]
    c.close()
    check(after == ["job"], f"nothing after the done event: {after}")
    st, b, _ = srv.request("GET", f"/batch/stream?job={job}", headers={"Last-Event-ID": "abc"})
    check(st == 400 and b["error"]["field"] == "Last-Event-ID", f"bad Last-Event-ID: {st} {b}")

    # ---- detached job: 202, then GET /batch/stream -----------------------------------------
    st, b, resp = srv.request("POST", "/batch/operations", {"table": "mem", "detach": True, "operations": [
        {"similarity": {"embedding": vec(i, DIM), "k": 1}} for i in range(10)]})
    check(st == 202 and b["stream"] == f"/batch/stream?job={b['job']}", f"detach: {st} {b}")
    c, r = open_stream(b["stream"], headers={"Last-Event-ID": "4"})
    got = [(ev, eid) for ev, eid, _ in sse_events(r)]
    c.close()
    check(got == [("job", None)] + [("batch_result", str(i)) for i in range(5, 10)] + [("done", "10")],
          f"detached job resumed: {got}")

    # ---- progress during a long commit, and reads meanwhile ----------------------------------
    BIG = 30000
    big = [{"store": {"id": f"big{i}", "embedding": vec(10000 + i, DIM)}} for i in range(BIG)]
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            t0 = time.time()
            st, b, _ = srv.request("POST", "/batch/similarity", {"table": "mem", "queries": [vec(1, DIM)], "k": 3})
            reads.append((t0, time.time() - t0, st))
            time.sleep(0.02)

    rt = threading.Thread(target=reader)
    c, r = open_stream("/batch/operations", {"table": "mem", "operations": big, "stream_response": True})
    rt.start()
    timeline = []
    t_first = None
    for ev, eid, data in sse_events(r):
        timeline.append((time.time(), ev, data))
        if ev == "batch_result" and t_first is None:
            t_first = time.time()
        if ev == "done":
            report = json.loads(data)
    c.close()
    stop.set()
    rt.join()
    t_job = timeline[0][0]
    progress = [(t, json.loads(x)) for t, ev, x in timeline if ev == "progress"]
    check(report["store"]["stored"] == BIG, f"big batch stored: {report['store']}")
    pre = [t for t, ev, _ in timeline if t <= t_first]
    gaps = [b - a for a, b in zip(pre, pre[1:])]
    print(f"big batch: transaction {report['store']['transaction_ms']:.0f} ms, commit "
          f"{report['store']['commit_ms']:.0f} ms, {len(progress)} progress events, max gap "
          f"{max(gaps) * 1000:.0f} ms")
    check(len(progress) >= 2, "progress events during the long transaction")
    check(max(gaps) < 0.40, f"an event at least every 250 ms (+ scheduling slack): max gap {max(gaps):.3f} s")
    commits = [p for _, p in progress if p.get("phase") == "commit"]
    if report["store"]["commit_ms"] > 300:
        check(len(commits) >= 1 and "applied" in commits[-1] and "rate" in commits[-1],
              f"commit progress from engram_stats: {commits[-1:] }")
    during = [(t, lat, st) for t, lat, st in reads if t_job < t < t_first]
    check(all(st == 200 for _, _, st in reads), "reads during the commit succeed")
    if during:
        worst = max(lat for _, lat, _ in during)
        print(f"{len(during)} reads during the transaction, worst latency {worst * 1000:.0f} ms")
        check(len(during) >= 3, "several reads were served while the transaction ran")
        # The server takes no lock for reads; the store's own commit lock can delay a read by
        # at most the apply of one commit (reported), never the whole transaction.
        check(worst * 1000 < report["store"]["transaction_ms"], "no read waited for the whole transaction")

    # ---- slow reader: the job pauses, the server does not buffer -----------------------------
    K = 100
    slow_ops = [{"similarity": {"embedding": vec(i, DIM), "k": K}} for i in range(3000)]
    rss0 = srv.rss_kb()
    c, r = open_stream("/batch/operations", {"table": "mem", "operations": slow_ops, "stream_response": True},
                       rcvbuf=65536)
    job = r.getheader("X-Engram-Job")
    events = sse_events(r)
    seen, paused, lag, peak = 0, False, 0, rss0
    t0 = time.time()
    # Read one event per 10 ms (the job makes them much faster) until the job has been seen
    # paused for a while, at most 8 s: the kernel's socket buffers fill first, then the job waits.
    paused_at = None
    for ev, eid, data in events:
        if ev != "batch_result":
            continue
        seen += 1
        if seen % 10 == 0:
            s = job_status(job)
            if s["paused"] and paused_at is None:
                paused_at = seen
            paused = paused or s["paused"]
            lag = max(lag, s["events_written"] - s.get("slowest_reader_events", s["events_written"]))
            peak = max(peak, srv.rss_kb())
        time.sleep(0.01)
        if (paused_at is not None and seen >= paused_at + 50) or time.time() - t0 > 8:
            break
    s = job_status(job)
    check(s["state"] == "running" and s["events_written"] < 3000, f"the job waits for the slow reader: {s}")
    check((paused or s["paused"]) and s["pauses"] >= 1, f"the job paused: {s}")
    check(lag <= QUEUE + 1, f"the job stays within {QUEUE} events of its reader (lag {lag})")
    rest = sum(1 for ev, _, _ in events if ev == "batch_result")
    c.close()
    peak = max(peak, srv.rss_kb())
    per = len(json.dumps(json.loads(data)))
    print(f"slow reader: {seen} events read slowly, results ~{per * 3000 >> 20} MB in all, RSS {rss0 >> 10} -> "
          f"peak {peak >> 10} MB, lag <= {lag} events")
    check(seen + rest == 3000, f"every event arrived: {seen} + {rest}")
    check(peak - rss0 < 32 * 1024, f"server RSS bounded under a slow reader: +{(peak - rss0) >> 10} MB")
finally:
    srv.stop()

# ---- job logs survive a restart: resume the first job on a new server --------------------------
srv = Server(binary, db)
try:
    jobs = [f[:-4] for f in os.listdir(db + ".jobs") if f.endswith(".log")]
    check(len(jobs) == 4, f"four job logs on disk: {jobs}")
    found = False
    for j in jobs:
        c, r = open_stream(f"/batch/stream?job={j}", headers={"Last-Event-ID": "450"})
        evs = [(ev, eid) for ev, eid, _ in sse_events(r)]
        c.close()
        if len(evs) > 1 and evs[-1] == ("done", "500"):
            found = True
            check(evs == [("job", None)] + [("batch_result", str(i)) for i in range(451, 500)] + [("done", "500")],
                  f"resume after restart: {evs[:3]}")
    check(found, "the first job is resumable after a restart")
finally:
    srv.stop()
finish("server sse")

#!/usr/bin/python3
"""Server test: every JSON endpoint, its error paths, partial success, token auth (401), the
body limit (413), /metrics and /health, and concurrent clients.

Usage: api_test.py BUILD/engram
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import Server, check, finish, tmpdir, vec  # noqa: E402

binary = sys.argv[1]
d = tmpdir()
DIM = 8
srv = Server(binary, os.path.join(d, "api.db"))
try:
    req = srv.request

    # ---- tables and health ------------------------------------------------------------------
    st, body, _ = req("POST", "/tables", {"name": "mem", "options": {"dim": DIM, "dedup": "off"}})
    check(st == 201 and body == {"table": "mem", "created": True}, f"create table: {st} {body}")
    st, body, _ = req("POST", "/tables", {"name": "mem", "options": {"dim": DIM}})
    check(st == 200 and body["created"] is False, f"create again: {st} {body}")
    st, body, _ = req("POST", "/tables", {"name": "bad", "options": {"dim": 8, "colour": "red"}})
    check(st == 400 and body["error"]["code"] == "invalid_option" and "colour" in body["error"]["message"],
          f"unknown table option: {st} {body}")
    st, body, _ = req("POST", "/tables", {"name": "x; DROP", "options": {}})
    check(st == 400 and body["error"]["field"] == "name", f"bad table name: {st} {body}")
    st, body, _ = req("GET", "/health")
    check(st == 200 and body["status"] == "ok" and body["tables"] == ["mem"], f"health: {body}")

    # ---- /batch/operations: partial success -------------------------------------------------
    ops = [
        {"store": {"id": "e0", "what": "coffee with Ana", "embedding": vec(0, DIM),
                   "occurred_at": "2024-05-01T10:00:00Z", "location": "Lisbon", "who": ["Ana"],
                   "confidence": 0.9, "metadata": {"k": 1}}},
        {"store": {"id": "e1", "embedding": vec(1, DIM)[:3]}},                   # wrong dim
        {"store": {"id": "e2", "embedding": vec(2, DIM), "colour": "red"}},     # unknown field
        {"store": {"id": "e3", "embedding": vec(3, DIM), "confidence": 2}},     # out of range
        {"store": {"embedding": vec(4, DIM)}},                                  # no id
        {"store": {"id": "e0", "embedding": vec(5, DIM)}},                      # duplicate id
        {"store": {"id": "e6", "embedding": vec(6, DIM), "occurred_at": "soon"}},  # bad time
        {"store": {"id": "e7", "embedding": vec(7, DIM), "who": "Ana"}},        # who not JSON
        {"store": {"id": "e8", "embedding": vec(8, DIM)}},
        {"recall": {"kind": "semantic", "value": "coffee", "threshold": 0.3}},
        {"recall": {"kind": "telepathy", "value": "x"}},
        {"similarity": {"embedding": vec(8, DIM), "k": 2}},
        {"similarity": {"embedding": vec(8, DIM), "k": -1}},
        {"similarity": {"embedding": vec(8, DIM)[:2], "k": 1}},
        {"similarity": {"embedding": vec(0, DIM), "k": 5, "filter": {"location": "Lisbon"}}},
    ]
    st, body, _ = req("POST", "/batch/operations", {"table": "mem", "operations": ops})
    check(st == 200, f"operations status {st} {body}")
    res = body["results"]
    check([r["operation"] for r in res] == list(range(len(ops))), "results in operation order")
    ok = [r["status"] for r in res]
    check(ok == ["ok", "error", "error", "error", "error", "error", "error", "error", "ok",
                 "ok", "error", "ok", "error", "error", "ok"], f"statuses {ok}")
    check(res[0]["store"] == {"id": "e0", "outcome": "stored", "activation": 0.9, "tier": "hot"},
          f"store result {res[0]}")

    def err(i):
        return res[i]["error"]

    check(err(1) == {"code": "invalid", "field": "operations[1].store.embedding", "operation": 1,
                     "message": "row 'e1', column embedding: expected 8 dimensions, got 3"},
          f"wrong dim error {err(1)}")
    check(err(2)["code"] == "invalid_field" and err(2)["field"] == "operations[2].store.colour"
          and err(2)["message"].startswith("operations[2].store.colour: unknown field"),
          f"unknown field error {err(2)}")
    check(err(3)["message"] == "row 'e3', column confidence: expected a number in [0, 1], got 2"
          and err(3)["field"] == "operations[3].store.confidence", f"confidence error {err(3)}")
    check(err(4)["field"] == "operations[4].store.id" and "missing" in err(4)["message"],
          f"missing id {err(4)}")
    check(err(5)["code"] == "constraint" and "duplicate id 'e0'" in err(5)["message"],
          f"duplicate id {err(5)}")
    check("malformed time 'soon'" in err(6)["message"] and err(6)["field"] == "operations[6].store.occurred_at",
          f"bad time {err(6)}")
    check(err(7)["field"] == "operations[7].store.who", f"who {err(7)}")
    check(res[9]["results"][0]["id"] == "e0", f"recall sees the request's own store {res[9]}")
    check(err(10)["message"].startswith("engram_recall: unknown cue kind 'telepathy'"), f"cue kind {err(10)}")
    check([h["id"] for h in res[11]["results"]][0] == "e8", f"similarity {res[11]}")
    check(err(12)["message"] == "operations[12].similarity.k: expected an integer >= 0, got -1",
          f"bad k {err(12)}")
    check("expected 8 dimensions, got 2" in err(13)["message"], f"query dim {err(13)}")
    check([h["id"] for h in res[14]["results"]] == ["e0"], f"filter {res[14]}")
    rep = body["report"]
    check(rep["succeeded"] == 5 and rep["failed"] == 10, f"report counts {rep}")
    check(rep["store"]["stored"] == 2 and rep["store"]["failed"] == 7
          and rep["store"]["batch"]["size"] == 2, f"store report {rep['store']}")

    # The failed rows changed nothing; the good ones are stored (one transaction = one batch).
    st, body, _ = req("GET", "/tables")
    check(body["tables"][0]["episodes"] == 2, f"only e0 and e8 stored: {body}")

    # ---- request-level errors: 4xx naming the field (and the operation) ---------------------
    def bad(path, payload, status, code, field=None, op=None, raw=None, contains=None):
        st, b, _ = req("POST", path, payload, raw=raw)
        e = b.get("error", {}) if isinstance(b, dict) else {}
        good = st == status and e.get("code") == code
        if field is not None:
            good = good and e.get("field") == field
        if op is not None:
            good = good and e.get("operation") == op
        if contains is not None:
            good = good and contains in e.get("message", "")
        check(good, f"{path} {payload if raw is None else raw[:40]}: got {st} {b}")

    bad("/batch/operations", None, 400, "invalid_json", raw="{not json")
    bad("/batch/operations", [1, 2], 400, "invalid_request")
    bad("/batch/operations", {"table": "mem", "operations": [], "colour": 1}, 400, "unknown_field", "colour")
    bad("/batch/operations", {"operations": []}, 400, "invalid_field", "table")
    bad("/batch/operations", {"table": "nope", "operations": []}, 404, "unknown_table", "table",
        contains="no such engram table: 'nope'")
    bad("/batch/operations", {"table": "m-e-m", "operations": []}, 400, "invalid_field", "table")
    bad("/batch/operations", {"table": "mem", "operations": {"store": {}}}, 400, "invalid_field", "operations")
    bad("/batch/operations", {"table": "mem", "operations": [{"store": {"id": "z", "embedding": vec(1, DIM)}},
                                                              {"forget": {}}]},
        400, "invalid_operation", "operations[1]", 1, contains="unknown operation 'forget'")
    bad("/batch/operations", {"table": "mem", "operations": [{"store": 5}]}, 400, "invalid_operation",
        "operations[0].store", 0)
    bad("/batch/operations", {"table": "mem", "operations": [{"store": {}, "recall": {}}]}, 400,
        "invalid_operation", "operations[0]", 0)
    bad("/batch/operations", {"table": "mem", "operations": [], "memory_limit_mb": 0}, 400, "invalid_field",
        "memory_limit_mb")
    bad("/batch/operations", {"table": "mem", "operations": [], "stream_response": "yes"}, 400,
        "invalid_field", "stream_response")
    # a rejected request stored nothing (z came before the bad operation)
    st, b, _ = req("POST", "/batch/operations", {"table": "mem", "operations": [{"recall": {"kind": "semantic", "value": "z"}}]})
    check(all(h["id"] != "z" for h in b["results"][0]["results"]), "a rejected request stores nothing")

    # ---- /batch/similarity and /batch/recall -------------------------------------------------
    st, body, _ = req("POST", "/batch/operations", {"table": "mem", "operations": [
        {"store": {"id": f"p{i}", "what": f"note {i}", "embedding": vec(100 + i, DIM)}} for i in range(50)]})
    check(st == 200 and body["report"]["store"]["stored"] == 50, f"50 stores {body['report']}")
    queries = [vec(100 + i, DIM) for i in range(20)]
    st, body, _ = req("POST", "/batch/similarity", {"table": "mem", "queries": queries, "k": 3})
    check(st == 200 and [r["query"] for r in body["results"]] == list(range(20)), "similarity query order")
    check(all(r["results"][0]["id"] == f"p{i}" and len(r["results"]) == 3 for i, r in enumerate(body["results"])),
          "each query finds itself first")
    st, body, _ = req("POST", "/batch/similarity", {"table": "mem", "queries": [vec(103, DIM)], "k": 5,
                                                     "filter": {"ids": ["p3", "p4"]}})
    check(sorted(h["id"] for h in body["results"][0]["results"]) == ["p3", "p4"], f"batch filter {body}")
    bad("/batch/similarity", {"table": "mem", "queries": [vec(1, DIM), vec(2, 3)]}, 400, "invalid", "queries[1]", 1,
        contains="engram_similar_batch query 1, embedding: expected 8 dimensions, got 3")
    bad("/batch/similarity", {"table": "mem", "queries": "x"}, 400, "invalid_field", "queries")
    bad("/batch/similarity", {"table": "mem", "queries": [vec(1, DIM), 7]}, 400, "invalid_field", "queries[1]", 1)
    bad("/batch/similarity", {"table": "mem", "queries": [vec(1, DIM)], "k": "ten"}, 400, "invalid_field", ".k")
    bad("/batch/similarity", {"table": "ghost", "queries": []}, 404, "unknown_table", "table")
    st, body, _ = req("POST", "/batch/recall", {"table": "mem", "cues": [
        {"kind": "semantic", "value": "note 7", "threshold": 0.9, "max_results": 1},
        {"kind": "nonsense", "value": "x"},
        {"kind": "embedding", "value": vec(105, DIM), "threshold": 0.99, "max_results": 1},
        {"kind": "context", "value": {"location": "Lisbon"}, "threshold": 0.5}]})
    r = body["results"]
    check(st == 200 and [c["cue"] for c in r] == [0, 1, 2, 3], f"recall order {body}")
    check(r[0]["results"][0]["id"] == "p7", f"semantic cue {r[0]}")
    check(r[1]["status"] == "error" and r[1]["error"]["message"].startswith("cue 1: unknown cue kind 'nonsense'")
          and r[1]["error"]["operation"] == 1, f"cue error {r[1]}")
    check(r[2]["results"][0]["id"] == "p5", f"embedding cue {r[2]}")
    check([h["id"] for h in r[3]["results"]] == ["e0"], f"context cue {r[3]}")
    bad("/batch/recall", {"table": "mem", "cues": [5]}, 400, "invalid_field", "cues[0]", 0)
    bad("/batch/recall", {"table": "mem", "cues": [{"kind": "semantic", "value": "x", "k": 1}]}, 400,
        "unknown_field", "cues[0].k", 0)

    # ---- other errors -------------------------------------------------------------------------
    st, b, _ = req("GET", "/nowhere")
    check(st == 404 and b["error"]["code"] == "not_found" and "GET /nowhere" in b["error"]["message"], f"404 {b}")
    st, b, _ = req("GET", "/batch/stream")
    check(st == 400 and b["error"]["field"] == "job", f"stream without job {b}")
    st, b, _ = req("GET", "/batch/stream?job=0123456789abcdef")
    check(st == 404 and b["error"]["code"] == "unknown_job", f"unknown job {b}")

    # ---- concurrency: many clients at once ------------------------------------------------------
    statuses = []
    lock = threading.Lock()

    def client(n):
        for j in range(10):
            if j % 3 == 0:
                s, b, _ = req("POST", "/batch/operations", {"table": "mem", "operations": [
                    {"store": {"id": f"c{n}-{j}-{k}", "embedding": vec(1000 + n * 100 + j * 10 + k, DIM)}}
                    for k in range(10)]})
                good = s == 200 and b["report"]["store"]["stored"] == 10
            else:
                s, b, _ = req("POST", "/batch/similarity", {"table": "mem", "queries": [vec(n, DIM)], "k": 5})
                good = s == 200 and len(b["results"][0]["results"]) == 5
            with lock:
                statuses.append(good)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    t0 = time.time()
    [t.start() for t in threads]
    [t.join() for t in threads]
    check(len(statuses) == 80 and all(statuses), f"concurrent clients: {statuses.count(False)} failed")
    print(f"80 concurrent requests in {time.time() - t0:.2f} s")

    # ---- memory_limit_mb caps a one-document reply: later results become errors ----------------
    st, body, _ = req("POST", "/batch/operations", {"table": "mem", "memory_limit_mb": 1, "operations": [
        {"similarity": {"embedding": vec(i, DIM), "k": 200}} for i in range(200)]})
    codes = [r.get("error", {}).get("code") for r in body["results"]]
    check(st == 200 and codes[0] is None and codes[-1] == "memory_limit"
          and "exceed memory_limit_mb (1 MB); ask for stream_response: true" in body["results"][-1]["error"]["message"],
          f"memory_limit_mb: {st} {codes[:2]} {codes[-2:]}")
    check(len(json.dumps(body, separators=(",", ":"))) < (1 << 20) + 100000, "the reply stays near the limit")

    # ---- /metrics -------------------------------------------------------------------------------
    st, text, _ = req("GET", "/metrics")
    lines = text.splitlines()
    check(st == 200 and '# TYPE engram_commit_seconds histogram' in lines, "metrics: commit histogram")
    check(any(l.startswith('engram_commit_seconds_count{table="mem"}') for l in lines), "metrics: commit count")
    check(any(l.startswith('engram_query_seconds_bucket{table="mem",kind="similarity",le="+Inf"}') for l in lines),
          "metrics: query histogram")
    ep = [l for l in lines if l.startswith('engram_episodes{table="mem"}')]
    check(ep == ['engram_episodes{table="mem"} 372'], f"metrics: episodes {ep}")  # 2 + 50 + 8 clients * 4 * 10
    for g in ("engram_hot", "engram_cold", "engram_indexed", "engram_pressure", "engram_deduplicated"):
        check(any(l.startswith(g + '{table="mem"}') for l in lines), f"metrics: {g}")
    check(any(l.startswith('engram_http_requests_total{route="/batch/operations",status="400"}') for l in lines),
          "metrics: 400s counted")
finally:
    srv.stop()

# ---- token (401) and body limit (413) ---------------------------------------------------------
srv = Server(binary, os.path.join(d, "auth.db"), "--token", "s3cret", "--max-body", "1MB")
try:
    st, b, r = srv.request("GET", "/health")
    check(st == 401 and b["error"]["code"] == "unauthorized" and r.getheader("WWW-Authenticate", "").startswith("Bearer"),
          f"401 without token: {st} {b}")
    st, b, _ = srv.request("GET", "/health", headers={"Authorization": "Bearer wrong"})
    check(st == 401, f"401 with a wrong token: {st}")
    st, b, _ = srv.request("POST", "/batch/operations", {"table": "x", "operations": []})
    check(st == 401, f"401 on POST: {st}")
    st, b, _ = srv.request("GET", "/health", headers={"Authorization": "Bearer s3cret"})
    check(st == 200 and b["status"] == "ok", f"200 with the token: {st}")
    st, b, _ = srv.request("GET", "/health?token=s3cret")
    check(st == 200, f"?token= accepted: {st}")
    auth = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    st, b, _ = srv.request("POST", "/tables", {"name": "m", "options": {"dim": 4}}, headers=auth)
    big = json.dumps({"table": "m", "operations": [{"store": {"id": f"b{i}", "embedding": [0.5, 0.25, 1, 2]}}
                                                    for i in range(30000)]})
    check(len(big) > 1 << 20, "the oversized body is over 1 MB")
    st, b, _ = srv.request("POST", "/batch/operations", raw=big, headers=auth)
    check(st == 413 and b["error"]["code"] == "payload_too_large"
          and b["error"]["message"] == "the request body exceeds the limit of 1048576 bytes (engram serve --max-body)",
          f"413: {st} {b}")
    st, b, _ = srv.request("GET", "/metrics", headers=auth)
    check(st == 200 and 'engram_episodes{table="m"} 0' in b, "nothing stored by the 413 request")
finally:
    srv.stop()
finish("server api")

#!/usr/bin/python3
"""Server test: the status page (GET /) rendered by headless Chromium. Episodes are stored in
three batches a second apart; the screenshot must show the table's line rising (pixels of the
first series colour across the chart and near its top, not only along the zero line), and the
DOM the live numbers. The PNG is decoded with zlib from the standard library.

Usage: page_test.py BUILD/engram
"""
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from common import Server, check, finish, tmpdir, vec  # noqa: E402

binary = sys.argv[1]
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if chromium is None:
    print("FAIL: chromium is not installed (scripts/install-deps.sh installs it)")
    sys.exit(1)
d = tmpdir()


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) for 8-bit RGB/RGBA non-interlaced PNGs."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


srv = Server(binary, os.path.join(d, "page.db"))
try:
    srv.request("POST", "/tables", {"name": "mem", "options": {"dim": 8, "dedup": "off"}})
    n = 0
    for b in range(3):
        st, body, _ = srv.request("POST", "/batch/operations", {"table": "mem", "operations": [
            {"store": {"id": f"e{n + i}", "embedding": vec(n + i, 8)}} for i in range(200 * (b + 1))]})
        check(st == 200 and body["report"]["store"]["stored"] == 200 * (b + 1), f"batch {b}: {st}")
        n += 200 * (b + 1)
        time.sleep(1.1)
    url = f"http://127.0.0.1:{srv.port}/"
    shot = os.path.join(d, "page.png")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=800,600", "--timeout=4000"]
    for attempt in range(3):
        p = subprocess.run(flags + [f"--screenshot={shot}", url], capture_output=True, timeout=90)
        if os.path.exists(shot) and len(read_png(shot)[2]) and attempt < 2:
            w, h, rows = read_png(shot)
            if sum(1 for r in rows for px in r if px == (0x1f, 0x77, 0xb4)) > 300:
                break
    check(os.path.exists(shot), f"screenshot written: {p.stderr.decode()[-500:]}")
    # Chromium takes the DOM when its timeout fires; on a loaded machine the page's first
    # fetch may not have answered yet: try again (up to 3 times) before judging.
    for attempt in range(3):
        p = subprocess.run(flags + ["--dump-dom", url], capture_output=True, timeout=90)
        dom = p.stdout.decode()
        if "live: 1 table(s)" in dom:
            break
    check("<td>mem</td><td>1,200</td>" in dom, f"the table row shows 1,200 episodes: {dom[dom.find('<tbody'):][:300]}")
    check("live: 1 table(s)" in dom, "the page is live")

    w, h, rows = read_png(shot)
    blue = (0x1f, 0x77, 0xb4)
    near = lambda px: all(abs(px[i] - blue[i]) <= 40 for i in range(3))  # noqa: E731
    pts = [(x, y) for y in range(h) for x in range(w) if near(rows[y][x])]
    # The plot area: the canvas (760x300) starts at the page margin; its frame is grey (#999).
    ys = [y for _, y in pts]
    check(len(pts) > 300, f"the series colour is drawn ({len(pts)} pixels)")
    if pts:
        cols = {x for x, _ in pts}
        top, bottom = min(ys), max(ys)
        print(f"series pixels: {len(pts)}, {len(cols)} columns, y from {top} to {bottom}")
        check(len(cols) >= 200, f"the line spans the chart ({len(cols)} columns)")
        # Besides the legend square, the rising line reaches well above the zero line.
        line_ys = {y for x, y in pts if x > 140}
        check(max(line_ys) - min(line_ys) > 150, f"the line rises: y range {min(line_ys)}..{max(line_ys)}")
finally:
    srv.stop()
finish("server page")

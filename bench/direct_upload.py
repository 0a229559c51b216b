#!/usr/bin/env python3
"""A direct upload to the bucket, as the upload page does it (src/http/static/
upload.js), for the benchmark's `direct` case: opens an upload request as a
visitor, declares the file, reads it in order one part at a time while hashing
it (SHA-256, as the page does), PUTs three parts at a time to the presigned part
URLs wharf hands out, then asks wharf to complete (wharf reads the object back
to check the hash) and waits for the verdict. Exits non-zero on any failure.

    python3 bench/direct_upload.py PAGE_URL FILE NAME
"""

import hashlib
import http.cookiejar
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

IN_FLIGHT = 3


def main():
    page, path, name = sys.argv[1:4]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(page).read()

    def call(method, rest, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{page}/direct{rest}", data=data, method=method,
                                     headers={"Wharf-Direct": "1", "Content-Type": "application/json"})
        try:
            with opener.open(req) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, {"error": e.read().decode(errors="replace")[:300]}

    size = os.path.getsize(path)
    status, begun = call("POST", "", {"name": name, "size": size})
    if status != 201:
        sys.exit(f"begin: {status} {begun}")
    key, part_size, parts = begun["key"], begun["part_size"], begun["parts"]

    def put(number, data, url):
        # No form content type (urllib's default for a body): the part is raw bytes.
        req = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req) as r:
            if r.status != 200:
                raise RuntimeError(f"part {number}: {r.status}")

    sha = hashlib.sha256()
    with open(path, "rb") as f, ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending = []
        for first in range(1, parts + 1, 100):
            numbers = list(range(first, min(first + 100, parts + 1)))
            status, got = call("POST", f"/{key}/urls", {"parts": numbers})
            if status != 200:
                sys.exit(f"urls: {status} {got}")
            for n in numbers:
                data = f.read(part_size)
                sha.update(data)
                # Never more than IN_FLIGHT parts read ahead, as the page.
                while len(pending) >= IN_FLIGHT:
                    pending.pop(0).result()
                pending.append(pool.submit(put, n, data, got["urls"][str(n)]))
        for p in pending:
            p.result()

    status, v = call("POST", f"/{key}/complete", {"sha256": sha.hexdigest()})
    deadline = time.time() + 600
    while (status == 202 or v.get("state") == "verifying") and time.time() < deadline:
        time.sleep(0.1)
        status, v = call("GET", f"/{key}")
    if status != 200 or v.get("state") != "complete" or v.get("sha256") != sha.hexdigest():
        sys.exit(f"complete: {status} {v}")


if __name__ == "__main__":
    main()

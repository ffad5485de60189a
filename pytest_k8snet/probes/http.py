"""Large-packet HTTP: a curl transfer (1 MiB by default), its bytes, time and exit code."""

from __future__ import annotations

import json
from dataclasses import dataclass

CURL_EXIT = {6: "could not resolve host", 7: "connection failed", 28: "timed out",
             52: "empty reply", 56: "connection reset while receiving"}


@dataclass(frozen=True)
class HttpResult:
    url: str
    exit_code: int
    http_code: int
    bytes: int
    expected_bytes: int | None
    seconds: float
    remote_ip: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        complete = self.expected_bytes is None or self.bytes == self.expected_bytes
        return self.exit_code == 0 and 200 <= self.http_code < 300 and complete

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0


def argv(url: str, *, connect_timeout: float = 1.0, max_time: float = 5.0) -> list[str]:
    return ["curl", "-sS", "-o", "/dev/null", "--connect-timeout", f"{connect_timeout:g}",
            "-m", f"{max_time:g}", "-w", "%{json}", url]


def parallel_argv(urls: list[str], *, connect_timeout: float = 1.0, max_time: float = 5.0,
                  parallel: int = 8) -> list[str]:
    """One curl for many transfers, ``parallel`` at a time, each with its own deadline and
    its own ``%{json}`` line (one process per source instead of one per destination)."""
    out = ["curl", "--parallel", "--parallel-immediate", "--parallel-max", str(max(1, parallel)),
           "--no-progress-meter"]
    for i, url in enumerate(urls):
        out += (["--next"] if i else []) + ["-sS", "-o", "/dev/null", "--connect-timeout",
                                            f"{connect_timeout:g}", "-m", f"{max_time:g}",
                                            "-w", "%{json}\\n", url]
    return out


def parse_parallel(urls: list[str], stdout: str, stderr: str, exit_code: int,
                   expected_bytes: int | None = None) -> dict[str, HttpResult]:
    """Each URL's result from :func:`parallel_argv`'s output; a URL without a line of its own
    (curl was cut off before it finished) gets curl's exit code and last error."""
    found: dict[str, HttpResult] = {}
    for line in stdout.replace("}{", "}\n{").splitlines():
        if not line.startswith("{"):
            continue
        try:
            url = str(json.loads(line).get("url_effective") or "")
        except ValueError:
            continue
        if url in urls and url not in found:
            found[url] = parse(url, line, "", exit_code, expected_bytes)
    return {url: found.get(url) or parse(url, "", stderr, exit_code or 28, expected_bytes)
            for url in urls}


def parse(url: str, stdout: str, stderr: str, exit_code: int,
          expected_bytes: int | None = None) -> HttpResult:
    try:
        data = json.loads(stdout[stdout.index("{"):]) if "{" in stdout else {}
    except ValueError:
        data = {}
    code = int(data.get("exitcode", exit_code))
    error = data.get("errormsg") or (stderr.strip().splitlines()[-1] if stderr.strip() else None)
    if code and not error:
        error = CURL_EXIT.get(code, f"curl exit {code}")
    return HttpResult(url=url, exit_code=code, http_code=int(data.get("http_code") or 0),
                      bytes=int(data.get("size_download") or 0), expected_bytes=expected_bytes,
                      seconds=float(data.get("time_total") or 0.0),
                      remote_ip=data.get("remote_ip") or None, error=error)

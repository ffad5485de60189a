"""Batch by source: many probes from one endpoint in ONE exec session.

On a real cluster every exec is an API call (~45 ms and API-server load), so running each
(source, destination) probe as its own exec makes a full suite O(N^2) exec sessions. The
runner below is a small POSIX ``sh`` script: it starts each job (one destination's probe)
in the background, at most ``parallel`` at a time (lanes: each lane runs its jobs one after
another, so a 64-node run never forks 63 probes at once in one pod), captures each job's
stdout, stderr and exit code separately into files under a ``mktemp -d`` directory, and
prints them back framed::

    ==k8snet== <index> <key> <exit code>
    <stdout, base64>
    ==k8snet-stderr==
    <stderr, base64>
    ==k8snet-end==

base64 because a probe's own output may contain anything, including our markers, and the
backends decode output as text (length prefixes would count replaced bytes wrongly).
Each job's output is then fed to the same parser as an unbatched run of that probe.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import shlex
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass

MARK = "==k8snet=="
ERR_MARK = "==k8snet-stderr=="
END_MARK = "==k8snet-end=="
TAR_MARK = "==k8snet-tar=="
TAR_END = "==k8snet-tar-end=="
DEFAULT_PARALLEL = 16
TIMED_OUT = 124  # what ``timeout`` exits with (and what the backends use for a timeout)
NO_RESULT = 125  # the job printed no frame: the runner itself was cut short


@dataclass(frozen=True)
class Job:
    """One probe inside a batch: ``key`` labels it (no whitespace), ``command`` is shell text
    (``shlex.join`` of an argv, or a call of a function from the script's ``prelude``)."""

    key: str
    command: str
    argv: tuple[str, ...] = ()  # what it runs, for transcripts and failure notes
    timeout: float | None = None  # per-job bound (``timeout``), so one stuck probe is one
    # One external command (made by :meth:`of`): the runner starts it directly, without the
    # subshell and ``sh -c`` that shell text needs; on a big cluster those forks cost more
    # CPU than the probes.
    simple: bool = False

    @classmethod
    def of(cls, key: str, argv: Sequence[str], timeout: float | None = None) -> "Job":
        return cls(key, shlex.join(argv), tuple(argv), timeout, simple=bool(argv))


@dataclass(frozen=True)
class JobResult:
    key: str
    exit_code: int
    stdout: str
    stderr: str
    framed: bool = True  # False: no frame came back (the exec itself failed or timed out)

    @property
    def timed_out(self) -> bool:
        return self.exit_code == TIMED_OUT


def lanes(count: int, parallel: int) -> list[list[int]]:
    """Job indexes per lane, round-robin, so the first destinations start first."""
    width = max(1, min(parallel, count))
    return [list(range(i, count, width)) for i in range(width)]


def lane_length(count: int, parallel: int) -> int:
    """The most jobs one lane runs one after another (for the exec's own timeout)."""
    return max((len(lane) for lane in lanes(count, parallel)), default=0)


def script(jobs: Sequence[Job], parallel: int = DEFAULT_PARALLEL, prelude: str = "",
           setup: str = "") -> str:
    """The runner. ``prelude``: shell functions the jobs call; ``setup``: shell text run
    once before the jobs (e.g. servers started in the background for other endpoints'
    clients). The runner waits for its job lanes only, never for what ``setup`` started,
    so setup's background processes must redirect their output and end on their own."""
    for job in jobs:
        if not job.key or any(c.isspace() for c in job.key):
            raise ValueError(f"batch job key must be one word: {job.key!r}")
    lines = ["d=$(mktemp -d 2>/dev/null || mktemp -d -p /dev/shm 2>/dev/null) || "
             "{ echo 'k8snet batch: no scratch directory (mktemp -d failed)' >&2; exit 125; }",
             "trap 'rm -rf \"$d\"' EXIT"]
    if prelude:
        # Written once to a file: the runner and every timeout-bounded job source it.
        lines.append(f"printf '%s\\n' {shlex.quote(prelude.strip())} >\"$d/p.sh\"; . \"$d/p.sh\"")
    if setup:
        lines.append(setup.strip())
    lines.append("k8snet_lanes=")
    for lane in lanes(len(jobs), parallel):
        body = []
        for i in lane:
            job = jobs[i]
            cmd = job.command
            files = f">\"$d/{i}.o\" 2>\"$d/{i}.e\" </dev/null; echo $? >\"$d/{i}.c\""
            if job.simple:
                bound = f"timeout {math.ceil(job.timeout)} " if job.timeout is not None else ""
                body.append(f"{bound}{cmd} {files}")
                continue
            if job.timeout is not None:
                # A fresh shell under ``timeout`` (so a prelude function can be bounded
                # too): it gets the scratch dir and the prelude as arguments.
                src = 'd=$2; . "$1"; ' if prelude else 'd=$2; '
                cmd = (f"timeout {math.ceil(job.timeout)} sh -c "
                       f"{shlex.quote(src + cmd)} sh \"$d/p.sh\" \"$d\"")
            # A subshell: a job's own ``exit`` must not end its lane.
            body.append(f"( {cmd}\n) {files}")
        lines.append("( " + "\n".join(body) + " ) &")
        lines.append("k8snet_lanes=\"$k8snet_lanes $!\"")
    lines.append("wait $k8snet_lanes")
    # Every result in one archive (two processes, not three per job); per-job frames
    # where the image has no tar.
    lines.append(f"if [ -n \"$k8snet_lanes\" ] && command -v tar >/dev/null 2>&1; then "
                 f"echo {TAR_MARK}; ( cd \"$d\" && tar -cf - [0-9]* ) | base64; "
                 f"echo {TAR_END}; exit 0; fi")
    for i, job in enumerate(jobs):
        lines.append(f"echo \"{MARK} {i} {job.key} $(cat \"$d/{i}.c\" 2>/dev/null || echo "
                     f"{NO_RESULT})\"; base64 <\"$d/{i}.o\"; echo {ERR_MARK}; "
                     f"base64 <\"$d/{i}.e\"; echo {END_MARK}")
    return "\n".join(lines) + "\n"


def argv(jobs: Sequence[Job], parallel: int = DEFAULT_PARALLEL, prelude: str = "",
         setup: str = "") -> list[str]:
    return ["sh", "-c", script(jobs, parallel, prelude, setup)]


def exec_timeout(jobs: Sequence[Job], parallel: int = DEFAULT_PARALLEL,
                 default: float = 5.0, slack: float = 5.0) -> float:
    """Bound for the whole exec: its longest lane's job timeouts, plus slack."""
    width = max(1, min(parallel, len(jobs)))
    worst = 0.0
    for lane in lanes(len(jobs), width):
        worst = max(worst, sum(jobs[i].timeout or default for i in lane))
    return worst + slack


def _decode(lines: list[str]) -> str:
    try:
        return base64.b64decode("".join(lines), validate=False).decode(errors="replace")
    except (binascii.Error, ValueError):
        return "\n".join(lines)


def _from_tar(jobs: Sequence[Job], stdout: str) -> dict[int, JobResult]:
    """The results from the runner's archive (``<i>.o``, ``<i>.e``, ``<i>.c`` per job); a
    cut-off archive gives the jobs whose three files came through whole."""
    text = stdout.split(TAR_MARK + "\n", 1)[1].split(TAR_END, 1)[0]
    encoded = "".join(text.split())
    try:
        # A cut-off stream ends mid-group: decode the whole groups that came.
        raw = base64.b64decode(encoded[:len(encoded) - len(encoded) % 4], validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files[member.name.removeprefix("./")] = handle.read()
    except (tarfile.TarError, EOFError, OSError):
        pass  # keep what was read before the cut
    found: dict[int, JobResult] = {}
    for i, job in enumerate(jobs):
        code_text = files.get(f"{i}.c", b"").decode(errors="replace").strip()
        if not code_text.lstrip("-").isdigit():
            continue
        found[i] = JobResult(job.key, int(code_text),
                             files.get(f"{i}.o", b"").decode(errors="replace"),
                             files.get(f"{i}.e", b"").decode(errors="replace"))
    return found


def parse(jobs: Sequence[Job], stdout: str) -> dict[str, JobResult]:
    """One result per job key; a job without a frame gets ``framed=False``."""
    found: dict[int, JobResult] = {}
    if TAR_MARK + "\n" in stdout:
        found = _from_tar(jobs, stdout)
        stdout = ""
    current: tuple[int, str, int] | None = None
    out: list[str] = []
    err: list[str] = []
    target = out
    for line in stdout.splitlines():
        if line.startswith(MARK + " "):
            parts = line.split()
            current = None
            if len(parts) == 4 and parts[1].isdigit():
                code = int(parts[3]) if parts[3].lstrip("-").isdigit() else NO_RESULT
                current = (int(parts[1]), parts[2], code)
            out, err, target = [], [], out
            target = out
        elif current is None:
            continue
        elif line == ERR_MARK:
            target = err
        elif line == END_MARK:
            i, key, code = current
            if i < len(jobs) and jobs[i].key == key:
                found[i] = JobResult(key, code, _decode(out), _decode(err))
            current = None
        else:
            target.append(line.strip())
    results: dict[str, JobResult] = {}
    for i, job in enumerate(jobs):
        results[job.key] = found.get(i) or JobResult(job.key, NO_RESULT, "", "", framed=False)
    return results

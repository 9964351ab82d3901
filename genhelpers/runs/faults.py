"""Sort a failed notebook into a class, with a short signature that stays the same from run to run."""
from __future__ import annotations

import hashlib
import re

CLASSES = ("out_of_memory", "missing_weights", "network", "import", "timeout", "kernel_died", "assertion", "other")

_RULES = [  # (class, exception names, phrases in the message), first match wins
    ("timeout", {"CellTimeoutError", "TimeoutError", "NotebookTimeout"}, ()),
    ("kernel_died", {"DeadKernelError", "WorkerDied"}, ("kernel died",)),
    ("out_of_memory", {"OutOfMemoryError", "MemoryError"}, ("out of memory", "cuda error: out of memory")),
    ("missing_weights", {"WeightsNotFound", "LocalEntryNotFoundError", "RepositoryNotFoundError",
                         "EntryNotFoundError", "GatedRepoError", "RevisionNotFoundError"},
     ("could not find weights", "missing component", "no file named", "does not appear to have a file")),
    ("network", {"ConnectionError", "ConnectTimeout", "ReadTimeout", "HTTPError", "MaxRetryError",
                 "NewConnectionError", "ConnectError", "OfflineModeIsEnabled"},
     ("name resolution", "network is unreachable", "connection refused", "connection reset")),
    ("import", {"ModuleNotFoundError", "ImportError", "PackageNotFoundError"}, ("no module named",)),
    ("assertion", {"AssertionError"}, ()),
]


def classify(ename: str, evalue: str = "", status: str = "failed") -> str:
    if status == "timeout":
        return "timeout"
    if status == "kernel died":
        return "kernel_died"
    text = (evalue or "").lower()
    for cls, names, phrases in _RULES:
        if ename in names or any(p in text for p in phrases):
            return cls
    return "other"


def normalise(message: str) -> str:
    """The message with what changes between runs taken out: paths, addresses, numbers, quoted names."""
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    line = re.sub(r"(/[\w.\-]+)+/?", "<path>", line)
    line = re.sub(r"0x[0-9a-fA-F]+", "<addr>", line)
    line = re.sub(r"\d+(\.\d+)?", "#", line)
    return line[:200]


def signature(cls: str, ename: str, evalue: str) -> str:
    """10 hex digits naming the failure: the same class, exception and normalised message give the same."""
    return hashlib.sha1(f"{cls}|{ename}|{normalise(evalue)}".encode()).hexdigest()[:10]


def describe(ename: str, evalue: str, status: str = "failed", cell=None, traceback: str = "") -> dict:
    cls = classify(ename, evalue, status)
    return {"class": cls, "signature": signature(cls, ename, evalue), "ename": ename,
            "evalue": (evalue or "").strip()[:2000], "cell": cell, "traceback": traceback[-4000:]}


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(lines) -> str:
    """A traceback (papermill gives a list of ANSI-coloured lines) as plain text."""
    text = "\n".join(lines) if isinstance(lines, (list, tuple)) else str(lines or "")
    return ANSI.sub("", text)

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
    ename, evalue = plain(ename), plain(evalue)
    cls = classify(ename, evalue, status)
    return {"class": cls, "signature": signature(cls, ename, evalue), "ename": ename,
            "evalue": evalue.strip()[:2000], "cell": cell, "traceback": plain(traceback)[-4000:]}


# every ANSI escape sequence (CSI: colours, cursor moves; OSC: titles, links), then what XML 1.0 cannot hold
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def plain(lines) -> str:
    """Text a notebook or a kernel wrote (papermill gives a traceback as a list of ANSI-coloured lines) as plain
    text: escape sequences and the control characters XML 1.0 forbids removed (tabs and newlines kept), so every
    report form can hold it."""
    text = "\n".join(lines) if isinstance(lines, (list, tuple)) else str(lines or "")
    return CONTROL.sub("", ANSI.sub("", text))

"""pytest plugin for `make test-valgrind`: every httpd the integration tests
start runs as one process (`apache2 -X`) under valgrind's memcheck, and the
session fails unless memcheck found no error and no byte definitely lost by
the module's own code.

    PYTHONPATH=tests/integration python3 -m pytest -p valgrind_plugin tests/integration/...

Tests that need several processes or a restart of the parent (graceful and
full restarts) are skipped: -X has one process and no restarts."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

import hellotest as ht

LOG_DIR = Path(os.environ.get("HELLO_VALGRIND_DIR", ht.REPO / "build" / "valgrind"))
SUPPRESSIONS = ht.REPO / "tests" / "valgrind.supp"
OURS = re.compile(r"mod_hello\.so|mod_hello(_config)?\.c|"
                  r"src/(core|date|json|validate|metrics|store_dbd|watchdog)\.c")


_config_text = ht.Httpd.config_text


def _config_text_prefork(self):
    """One process with one thread: httpd -X on the event MPM exits with its
    worker threads still running, which makes its own shutdown unreliable
    under memcheck; prefork's single thread exits cleanly."""
    text = _config_text(self).replace(
        "LoadModule mpm_event_module   {0}/mod_mpm_event.so".format(ht.MODULES_DIR),
        "LoadModule mpm_prefork_module {0}/mod_mpm_prefork.so".format(ht.MODULES_DIR))
    # Threads are the event MPM's; prefork refuses the directive.
    return re.sub(r"^ThreadsPerChild.*$", "", text, flags=re.M)


def _start(self):
    self.write_config()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"memcheck.{self.port}.%p.log"
    cmd = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
           "--errors-for-leak-kinds=definite", "--num-callers=40", "--track-origins=yes",
           "--keep-debuginfo=yes",
           f"--suppressions={SUPPRESSIONS}", f"--log-file={log}",
           ht.APACHE2, "-X", "-d", str(self.root), "-f", str(self.conf)]
    self._stderr = open(LOG_DIR / f"httpd.{self.port}.stderr", "wb")
    self._valgrind = subprocess.Popen(cmd, env={**os.environ, **self.env},
                                      stdout=subprocess.DEVNULL, stderr=self._stderr,
                                      start_new_session=True)
    try:
        ht.wait_until(self._answers, 120, interval=0.2, what=f"httpd under valgrind on {self.port}")
    except TimeoutError:
        self._valgrind.kill()
        stderr = (LOG_DIR / f"httpd.{self.port}.stderr").read_text(errors="replace")
        raise RuntimeError(f"httpd under valgrind did not answer:\n{stderr[-2000:]}"
                           f"\n{self.error_log_text()[-3000:]}")
    return self


def _stop(self):
    proc = getattr(self, "_valgrind", None)
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=180)  # memcheck's leak search takes a while
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _restart(self, mode="stop-start"):
    if mode == "stop-start":
        self.stop()
        return self.start()
    pytest.skip(f"{mode} restarts need a parent process; httpd -X has none")


def pytest_configure(config):
    ht.Httpd.config_text = _config_text_prefork
    ht.Httpd.start = _start
    ht.Httpd.stop = _stop
    ht.Httpd.restart = _restart


def _records(text):
    """The error and leak records of one memcheck log, as lists of lines."""
    records, current = [], []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if body == "":
            if current:
                records.append(current)
            current = []
        else:
            current.append(body)
    if current:
        records.append(current)
    return records


def summarize():
    """(errors, definitely lost bytes in the module's code, report text)."""
    errors = 0
    ours_lost = 0
    report = []
    shown = []  # what the console shows: the first error records themselves
    for log in sorted(LOG_DIR.glob("memcheck.*.log")):
        text = log.read_text(errors="replace")
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        n = int(m.group(1)) if m else -1
        # A log cut short (its process killed before memcheck's exit report)
        # still holds every error found until then, since memcheck writes each
        # at once: it counts only if it holds one. Its leaks went unchecked,
        # which the report says.
        unfinished_clean = n < 0 and not any(
            re.match(r"(Invalid|Conditional|Use of|Syscall param|Mismatched|Source and|"
                     r"Argument|Address)", rec[0]) for rec in _records(text))
        if n != 0 and not unfinished_clean:
            errors += max(n, 1)
            if n < 0:
                shown.append(f"{log.name}: no ERROR SUMMARY (memcheck did not finish):\n    "
                             + "\n    ".join(text.splitlines()[-30:]))
            else:
                for rec in _records(text):
                    if not re.match(r"(HEAP|LEAK|ERROR) SUMMARY|[\d,]+ bytes in|Memcheck|"
                                    r"Copyright|Using Valgrind|Command:|Parent PID|"
                                    r"For lists|For counts|in use at exit|total heap|"
                                    r"definitely|indirectly|possibly|still reachable|"
                                    r"suppressed|Rerun", rec[0]):
                        shown.append(f"{log.name}:\n    " + "\n    ".join(rec[:45]))
        for rec in _records(text):
            head = rec[0]
            lost = re.match(r"([\d,]+) bytes in [\d,]+ blocks are definitely lost", head)
            if lost and any(OURS.search(line) for line in rec):
                ours_lost += int(lost.group(1).replace(",", ""))
                report.append(f"{log.name}: " + "\n    ".join(rec))
        summary = re.search(r"definitely lost: ([\d,]+) bytes", text)
        if unfinished_clean:
            report.append(f"{log.name}: did not finish (no exit report, leaks unchecked); "
                          "no error recorded")
            continue
        report.append(f"{log.name}: ERROR SUMMARY {n} errors; definitely lost (all code) "
                      f"{summary.group(1) if summary else '0'} bytes")
    return errors, ours_lost, "\n".join(report), "\n".join(shown[:5])


def pytest_sessionfinish(session, exitstatus):
    # Stop whatever is still running so that every log is complete.
    for server in list(ht.Httpd.instances):
        _stop(server)
    errors, ours_lost, report, shown = summarize()
    (LOG_DIR / "report.txt").write_text(report + f"\nTOTAL: {errors} errors, "
                                        f"{ours_lost} bytes definitely lost in mod_hello\n")
    print(f"\nvalgrind: {errors} errors, {ours_lost} bytes definitely lost in mod_hello's code "
          f"(logs and report in {LOG_DIR})")
    if errors or ours_lost:
        print(shown or report[-6000:])
        session.exitstatus = 1

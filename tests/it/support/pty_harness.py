"""Runs a command with its stdin on a pseudo-terminal, as a person at a terminal would: waits for
a text on its stderr, types lines (waiting for each answer on stdout), closes the terminal, and
prints what happened as one JSON object: {"code", "waited", "stdout", "stderr"}.

argv[1] is a JSON object: "argv", "env", "patience" (seconds, for everything), "wait_for" (text
on stderr), "lines" ([line, answer expected on stdout] pairs), "controlling" (make the terminal
the child's controlling terminal, in a session of its own: closing it then also sends SIGHUP),
"stdout_on_terminal" (stdout on the terminal too, as in a real one, instead of a pipe).
Used by tests/it/cli_first_run.rs; Python's pty module saves a Rust dependency.
"""
import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time

spec = json.loads(sys.argv[1])
master, slave = pty.openpty()
# No echo: what is read back from the terminal is only what the child wrote.
attrs = termios.tcgetattr(slave)
attrs[3] &= ~termios.ECHO
termios.tcsetattr(slave, termios.TCSANOW, attrs)


def controlling():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


child = subprocess.Popen(
    spec["argv"],
    stdin=slave,
    stdout=slave if spec["stdout_on_terminal"] else subprocess.PIPE,
    stderr=subprocess.PIPE,
    env=spec["env"],
    preexec_fn=controlling if spec["controlling"] else None,
)
os.close(slave)
streams = {"stderr": child.stderr}
if child.stdout is not None:
    streams["stdout"] = child.stdout
got = {"stdout": b"", "stderr": b""}
deadline = time.monotonic() + spec["patience"]


def read_until(name, needle):
    """Reads the child's pipes until `needle` is in `name`'s output, the pipes close, or time runs out."""
    while needle.encode() not in got[name] and streams and time.monotonic() < deadline:
        ready, _, _ = select.select(list(streams.values()), [], [], 0.2)
        for key, stream in list(streams.items()):
            if stream in ready:
                data = os.read(stream.fileno(), 65536)
                if data:
                    got[key] += data
                else:
                    del streams[key]
    return needle.encode() in got[name]


waited = read_until("stderr", spec["wait_for"])
for line, answer in spec["lines"]:
    os.write(master, line.encode() + b"\n")
    read_until("stdout", answer)
# The terminal goes away, as when its window is closed.
os.close(master)
try:
    code = child.wait(timeout=max(1.0, deadline - time.monotonic()))
except subprocess.TimeoutExpired:
    child.kill()
    child.wait()
    code = "did not exit"
for key, stream in list(streams.items()):
    got[key] += stream.read()
print(json.dumps({
    "code": code,
    "waited": waited,
    "stdout": got["stdout"].decode(errors="replace"),
    "stderr": got["stderr"].decode(errors="replace"),
}))

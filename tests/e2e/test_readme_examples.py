"""The README's examples, pasted in order into a shell against what `make run` starts.

Every ```sh, ```bash and ```console block of README.md runs, in document order, in one bash
session (so `KEY`, `API` and friends carry over, as in a reader's terminal), against
`tenantctl db upgrade && tenantctl serve --dev` on the embedded defaults in a fresh directory.
A block that cannot run here (real AWS, `make` itself, code for another program) says why in a
`<!-- readme-test: skip: <reason> -->` line right above it; ```python blocks must. A block that
is neither run nor skipped with a reason fails the test, so a new example cannot go unchecked.

Inside a block:
- `curl` fails on any HTTP status >= 400, unless its line ends with `# expect NNN` (that status);
- any other command fails on a non-zero exit, unless its line ends with `# expect exit N`;
- in ```console blocks, lines starting with `$ ` are the commands and the rest is their output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"
SHELLS = ("sh", "bash", "console")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>\S.*?)\s*-->")
EXPECT_STATUS = re.compile(r"^(?P<cmd>\s*curl\b.*?)\s+#\s*expect (?P<status>\d{3})\b.*$")
EXPECT_EXIT = re.compile(r"^(?P<cmd>.*?)\s+#\s*expect exit (?P<code>\d+)\b.*$")

PRELUDE = r"""
set -euo pipefail
__shown() { printf '%s ' "$@" | sed -E 's/(Bearer )[^ ]+/\1***/g'; }
curl() {
  # A README curl must succeed (status < 400) unless its line says `# expect NNN`.
  local out status
  out=$(mktemp)
  status=$(command curl -sS -o "$out" -w '%{http_code}' "$@") || { cat "$out"; return 1; }
  cat "$out"; echo
  if [[ -n "${README_EXPECT:-}" ]]; then
    [[ "$status" == "$README_EXPECT" ]] || { echo "README: expected HTTP $README_EXPECT, got $status: curl $(__shown "$@")" >&2; return 1; }
  elif (( status >= 400 )); then
    echo "README: HTTP $status from: curl $(__shown "$@")" >&2; return 1
  fi
}
__expect_exit() {
  local want=$1; shift
  local got=0
  "$@" || got=$?
  [[ "$got" == "$want" ]] || { echo "README: expected exit $want, got $got: $*" >&2; return 1; }
}
"""


@dataclass
class Block:
    line: int
    lang: str
    text: str
    skip: str | None


def blocks(markdown: str) -> list[Block]:
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i, fence.group(1)
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = SKIP.search(before)
        found.append(Block(start + 1, lang, "\n".join(lines[start + 1 : j]), marker.group("reason") if marker else None))
        i = j + 1
    return found


def _line(line: str) -> str:
    if m := EXPECT_STATUS.match(line):
        return f"README_EXPECT={m['status']} {m['cmd']}"
    if m := EXPECT_EXIT.match(line):
        return f"__expect_exit {m['code']} {m['cmd']}"
    return line


def script_of(block: Block, port: int) -> str:
    text = block.text.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("localhost:8000", f"localhost:{port}")
    if block.lang == "console":
        commands = [line[2:] for line in text.splitlines() if line.startswith("$ ")]
    else:
        commands = text.splitlines()
    body = "\n".join(_line(c) for c in commands)
    return f'echo "== README.md line {block.line}"\n{body}\n'


def test_every_example_is_run_or_says_why_not() -> None:
    unaccounted = [
        f"README.md:{b.line} ({b.lang or 'no language'})"
        for b in blocks(README.read_text())
        if b.skip is None and b.lang in ("python", "py", "shell", "zsh")
    ]
    assert not unaccounted, f"examples neither run nor skipped with a reason: {unaccounted}"



def test_the_readme_examples_work_pasted_in_order(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    assert shutil.which("tenantctl", path=bin_dir), "tenantctl is not installed in this environment"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTS_")}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '')}", TENANTS_PORT=str(port), TENANTS_POLL_INTERVAL_S="0.1")
    # What `make run` runs (after installing the venv): db upgrade, then serve --dev.
    subprocess.run(["tenantctl", "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=60, capture_output=True)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(["tenantctl", "serve", "--dev"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tenantctl serve --dev did not come up"
            time.sleep(0.1)
        runnable = [b for b in blocks(README.read_text()) if b.lang in SHELLS and b.skip is None]
        assert len(runnable) >= 4, "the README's walk-through is gone?"
        script = PRELUDE + "\n".join(script_of(b, port) for b in runnable)
        (tmp_path / "readme.sh").write_text(script)
        done = subprocess.run(
            ["bash", str(tmp_path / "readme.sh")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-4000:]}"
        assert "Traceback" not in log_path.read_text()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)

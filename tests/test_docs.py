"""The API reference (mkdocs.yml, docs/) builds in strict mode: a page, a docstring
object or a cross-reference that does not resolve fails the build."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_docs_build_in_strict_mode(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO,
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    network = (site / "api" / "network" / "index.html").read_text()
    assert "FFEvNN" in network and "state_at_t" in network  # (inherited forward functions included)
    assert "eventax train" in (site / "index.html").read_text()  # the guide is the README

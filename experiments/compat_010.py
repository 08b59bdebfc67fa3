"""Run the published eventax 0.1.0's own test suite against this package, unchanged.

0.1.0 ships its tests in its PyPI source distribution (`tests/test_evnn.py`,
`test_neuron_models.py`, `test_io.py`, `test_adjoint.py`). This script downloads that
sdist (`pip download --no-binary :all: --no-deps eventax==0.1.0`), copies only its
`tests/` folder into a scratch directory (so that `import eventax` finds this package,
not the sdist's sources), runs pytest there with this interpreter, and reports passed /
failed per file, with each failure's first error line:

    python experiments/compat_010.py [--keep DIR]

Writes `experiments/results/compat_010.json`. Nothing of 0.1.0 enters the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from common import RESULTS


def download_tests(workdir: Path) -> Path:
    """The sdist's `tests/` folder, copied alone into `workdir/tests`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
         "eventax==0.1.0", "-d", str(workdir / "sdist")],
        check=True,
    )
    (archive,) = (workdir / "sdist").glob("eventax-0.1.0.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(workdir / "sdist", filter="data")
    (tests,) = (workdir / "sdist").glob("eventax-0.1.0/tests")
    return Path(shutil.copytree(tests, workdir / "tests"))


def run_tests(tests: Path) -> dict:
    """Per test file: passed, failed and the failures' first error lines (from JUnit XML)."""
    report = tests.parent / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-n", "0",
         "--continue-on-collection-errors", f"--junitxml={report}", str(tests)],
        cwd=tests.parent, check=False,
    )
    files: dict = defaultdict(lambda: {"passed": 0, "failed": 0, "failures": {}})
    for case in ET.parse(report).iter("testcase"):
        # (a module that fails to import is one case named by its module path)
        name = (case.get("classname") or case.get("name", "")).split(".")[-1] + ".py"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            files[name].setdefault("skipped", 0)
            files[name]["skipped"] += 1
        elif problem is None:
            files[name]["passed"] += 1
        else:
            files[name]["failed"] += 1
            files[name]["failures"][case.get("name")] = (problem.get("message") or "").splitlines()[0][:200]
    return dict(files)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = p.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="eventax010-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        files = run_tests(download_tests(workdir))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    passed = sum(f["passed"] for f in files.values())
    total = sum(f["passed"] + f["failed"] + f.get("skipped", 0) for f in files.values())
    print(f"\neventax 0.1.0's tests against this package: {passed} of {total} pass")
    for name, f in sorted(files.items()):
        print(f"  {name}: {f['passed']} passed, {f['failed']} failed")
        for test, message in f["failures"].items():
            print(f"    {test}: {message}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compat_010.json").write_text(json.dumps({"passed": passed, "total": total, "files": files}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

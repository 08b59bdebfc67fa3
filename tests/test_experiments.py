"""Every script in `experiments/` imports against the current package (one subprocess:
the scripts may switch JAX settings at import). A script that runs for hours is only
run by hand, so an API change that breaks it would otherwise go unnoticed."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.py"))

_IMPORT_ALL = """
import importlib.util, sys
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[1]).parent))  # (as a script: its folder first)
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"experiment_{i}", path)
    sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("imported", path)
"""


def test_every_experiment_script_imports():
    assert len(SCRIPTS) >= 10
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("imported") == len(SCRIPTS)


def test_no_script_names_a_path_of_one_machine():
    for script in SCRIPTS:
        assert "/work/" not in script.read_text(), f"{script.name} names a machine path; use experiments/common.py"

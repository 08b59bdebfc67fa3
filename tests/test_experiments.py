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


def _paper():
    import importlib.util

    path = SCRIPTS[0].parent / "paper.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("paper_script", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_paper_table_is_computed_from_the_run_directories(tmp_path):
    paper = _paper()
    label, config, median = paper.ROWS[0]
    accs = [0.95, 0.91, 0.93]
    for seed, acc in enumerate(accs):
        d = tmp_path / paper.config_name(config) / f"seed{seed}"
        d.mkdir(parents=True)
        test = {"accuracy": acc, "max_firing": 1.0, "dead_neurons": 2 * seed, "fire_count": 8.0, "t_first_output": 20.0}
        (d / "results.json").write_text(__import__("json").dumps({"test": test, "epochs": 100, "train_time_s": 480.0}))
    rows = {line.split(" | ")[0][2:]: line for line in paper.table(tmp_path).splitlines()[2:]}
    assert len(rows) == len(paper.ROWS)
    cells = rows[label].split(" | ")
    # 3 seeds, mean ± sample std, median, the paper's median, max firing, mean dead neurons
    assert cells[1:7] == ["3", "93.00 ± 2.00", "93.00", f"{median:.2f}", "1.00", "2.00"]
    assert "| 100 | 8 min |" in rows[label]
    assert rows[paper.ROWS[1][0]].split(" | ")[1] == "0"  # a row without finished runs


def test_paper_run_skips_finished_runs_and_resumes_interrupted_ones(tmp_path, monkeypatch):
    paper = _paper()
    names = [paper.config_name(c) for _, c, _ in paper.ROWS[:3]]
    (tmp_path / names[0] / "seed0").mkdir(parents=True)
    (tmp_path / names[0] / "seed0" / "results.json").write_text("{}")
    (tmp_path / names[1] / "seed0").mkdir(parents=True)
    (tmp_path / names[1] / "seed0" / "checkpoint.zip").write_text("")
    calls = []
    monkeypatch.setattr(paper.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    paper.run(tmp_path, [0], names)
    assert len(calls) == 2
    assert "--resume" in calls[0] and str(tmp_path / names[1] / "seed0") in calls[0]
    assert "--resume" not in calls[1] and "train.seed=0" in calls[1]


def test_paper_table_is_written_between_the_markers(tmp_path):
    paper = _paper()
    doc = tmp_path / "RESULTS.md"
    doc.write_text(f"intro\n{paper.START}\nold\n{paper.END}\nrest\n")
    paper.write(doc, "new table")
    assert doc.read_text() == f"intro\n{paper.START}\nnew table\n{paper.END}\nrest\n"

"""One training process for tests/train/test_distributed.py (a script; pytest does not collect it).

    python _dp_worker.py CONFIG_JSON RUN_DIR [--watch DIR] [--bad-batch DIR]

Trains `eventax.config.from_dict(json.loads(CONFIG_JSON))` with
`eventax.train.train(cfg, RUN_DIR, progress=False)`. A multi-process run is
described by the environment that `eventax.train.initialize_distributed` reads
(`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`); the local
devices by `XLA_FLAGS`.

`--watch DIR`: on a process other than 0, an audit hook records every attempt
to create or change anything under `DIR` (`open` for writing, `os.open` with a
writing flag, `os.mkdir`, `os.rename`/`os.replace`, `os.remove`, ...); the
list is printed as `WRITES <json>`.

`--bad-batch DIR`: first check that a batch size that does not split over the
devices is refused, both by `DataParallel.check_batch_size` and by `train`
(which must then leave `DIR` uncreated); prints `BAD_BATCH <json>`.

The last line of a successful run is `DONE <json>` (process index and count,
device counts, and what `train` returned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.symlink", "os.link",
                "os.chmod", "os.utime", "shutil.copyfile", "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp")


def watch_writes(root: str) -> list:
    """Record (in the returned list) attempts to create or change anything under `root`."""
    root = os.path.realpath(root)
    seen: list = []

    def under(path) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor
        p = os.path.realpath(os.fsdecode(path))
        return p == root or p.startswith(root + os.sep)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
            if writing and under(path):
                seen.append([event, os.fsdecode(path), mode])
        elif event in _PATH_EVENTS and any(under(a) for a in args[:2]):
            seen.append([event, *(os.fsdecode(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike)))])

    sys.addaudithook(hook)
    return seen


def check_bad_batch(raw: dict, run_dir: str) -> dict:
    """Batch size one more than a multiple of the device count: both checks must refuse it."""
    import jax

    from eventax.config import from_dict
    from eventax.train import DataParallel, train

    n = jax.device_count()
    bad = dict(raw, optim=dict(raw["optim"], batch_size=2 * n + 1))
    out = {"devices": n, "batch_size": bad["optim"]["batch_size"]}
    for name, call in (
        ("check_batch_size", lambda: DataParallel().check_batch_size(bad["optim"]["batch_size"])),
        ("train", lambda: train(from_dict(bad), run_dir, progress=False)),
    ):
        try:
            call()
            out[name] = None
        except ValueError as e:
            out[name] = str(e)
    out["wrote"] = os.path.exists(run_dir)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("run_dir")
    p.add_argument("--watch")
    p.add_argument("--bad-batch")
    args = p.parse_args(argv)

    import jax

    # Before any JAX computation: the CPU client picks its cross-process
    # collectives when it is created (gloo is JAX's default; be explicit).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")

    from eventax.config import from_dict
    from eventax.train import initialize_distributed, train

    initialize_distributed()
    writes = watch_writes(args.watch) if args.watch and jax.process_index() != 0 else []
    raw = json.loads(args.config)
    if args.bad_batch:
        print("BAD_BATCH " + json.dumps(check_bad_batch(raw, args.bad_batch)), flush=True)
    results = train(from_dict(raw), args.run_dir, progress=False)
    print("WRITES " + json.dumps(writes), flush=True)
    info = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "results": results,
    }
    print("DONE " + json.dumps(info), flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        # Exit now: a normal exit of a multi-process run waits in JAX's shutdown
        # barrier for the other processes (minutes) before giving up.
        os._exit(1)

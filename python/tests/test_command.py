"""The `biprop` command that the package installs: the Rust binary's command
line in the Python process, run as a person runs it (a shell, a pipe, Ctrl-C)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import biprop

REPO = Path(__file__).resolve().parents[2]
SUBSET = REPO / "tests" / "data" / "mnist-subset"
SUBSET_FLAGS = ["--dataset", "idx", "--classes", "10", "--data-dir", str(SUBSET), "--val-size", "1000"]


def command() -> list:
    """The installed console script (beside this interpreter, as pip puts it)."""
    path = shutil.which("biprop", path=os.path.dirname(sys.executable))
    assert path is not None, "the package installs a `biprop` command beside python"
    return [path]


def module() -> list:
    return [sys.executable, "-m", "biprop"]


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def test_help_version_and_exit_codes_are_the_binarys():
    for prog in [command(), module()]:
        r = run(prog + ["--help"])
        assert r.returncode == 0, r.stderr
        assert "Usage: biprop <COMMAND>" in r.stdout and "train" in r.stdout
        r = run(prog + ["--version"])
        assert r.returncode == 0 and r.stdout.strip() == f"biprop {biprop.__version__}"
        # A usage error: clap's message and code 2; a failing command: 1.
        r = run(prog + ["train", "--no-such-flag"])
        assert r.returncode == 2 and "unexpected argument '--no-such-flag'" in r.stderr
        r = run(prog + ["report", "/no/such/folder"])
        assert r.returncode == 1 and r.stderr.startswith("error: "), r.stderr
        assert "Traceback" not in r.stderr


def test_the_command_trains_what_the_package_trains(tmp_path):
    flags = SUBSET_FLAGS + ["--rule", "bfa", "--hidden", "1x32", "--epochs", "2", "--train-limit", "1000",
                            "--seed", "3", "--threads", "1"]
    r = run(command() + ["train", "-q", *flags, "--out", str(tmp_path / "cmd")])
    assert r.returncode == 0, r.stderr
    assert "run saved in" in r.stdout
    py = biprop.train(
        out=tmp_path / "py", progress=False, dataset="idx", classes=10, data_dir=str(SUBSET),
        val_size=1000, rule="bfa", hidden="1x32", epochs=2, train_limit=1000, seed=3, threads=1,
    )
    got = biprop.load(tmp_path / "cmd" / "checkpoint.safetensors").state_dict()
    for name, w in py.weights.items():
        assert np.array_equal(w, got[name]), name
    # Its other subcommands work on what it wrote.
    r = run(module() + ["generate", str(tmp_path / "cmd"), "-o", str(tmp_path / "g.png")])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_closed_pipe_ends_the_command_quietly():
    for prog in [command(), module()]:
        p = subprocess.Popen(prog + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Nobody reads: the command's first write finds the pipe closed (EPIPE).
        p.stdout.close()
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_ctrl_c_ends_a_training_command_at_once(tmp_path):
    for i, prog in enumerate([command(), module()]):
        out = tmp_path / f"run{i}"
        p = subprocess.Popen(
            prog + ["train", *SUBSET_FLAGS, "--hidden", "1x32", "--epochs", "100000", "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # As a shell's foreground job: SIGINT not ignored (CI may start
            # the tests with it ignored, and children keep that).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while not (out / "metrics.csv").exists():
            assert p.poll() is None and time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        start = time.monotonic()
        p.wait(timeout=30)
        # Killed by the signal, as the binary is, within a moment.
        assert p.returncode == -signal.SIGINT
        assert time.monotonic() - start < 5.0


def test_slurm_job_scripts_run_the_command_not_python(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f'out = "{tmp_path / "out"}"\n[base]\ndataset = "idx"\nclasses = 10\n'
        f'data_dir = "{SUBSET}"\nval_size = 1000\nhidden = [16]\n[grid]\nrule = ["bp", "fa"]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "BIPROP_EXE"}
    for prog in [command(), module()]:
        r = run(prog + ["sweep", str(sweep), "--slurm"], env=env)
        assert r.returncode == 0, r.stderr
        script = (tmp_path / "out" / "slurm" / "array.sbatch").read_text()
        exec_line = next(l for l in script.splitlines() if l.startswith("exec "))
        assert exec_line.split()[1].strip("'") == command()[0], exec_line

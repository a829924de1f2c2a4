"""Progress of long jobs: the overall line of training (log and terminal of steps/train_xvector.sh) and the
per-job line of extraction."""
import os

import numpy as np
import pytest

from conftest import REPO, run
from tfspk import cli


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_line_counts_rate_and_eta_from_the_units_of_this_run():
    clock = FakeClock()
    progress = cli.Progress(600, "steps", start=100, every=50, interval=60, clock=clock)
    clock.now += 50.0
    # 100 steps in 50 s since the (resumed) start at 100: 2 steps/s, 400 left -> 200 s
    assert progress.line(200) == "200/600 steps (33%), 2 steps/s, elapsed 0:00:50, ETA 0:03:20"
    clock.now += 3600 + 59.6
    assert progress.line(600).endswith("elapsed 1:01:50, ETA 0:00:00")


def test_due_every_n_units_after_an_interval_and_at_the_end():
    clock = FakeClock()
    progress = cli.Progress(10, "utterances", every=4, interval=30, clock=clock)
    assert [n for n in range(1, 11) if progress.due(n)] == [4, 8, 10]
    clock.now += 31
    assert progress.due(5)            # a minute without a line
    progress.line(5)
    assert not progress.due(6)


def test_unknown_total_has_no_percent_and_no_eta():
    clock = FakeClock()
    progress = cli.Progress(None, "utterances", clock=clock)
    clock.now += 4
    assert progress.line(8) == "8 utterances, 2 utterances/s, elapsed 0:00:04"
    assert cli.Progress(0, "steps", clock=clock).line(0) == "0/0 steps (100%), 0 steps/s, elapsed 0:00:00, ETA 0:00:00"


def test_training_log_has_overall_progress_with_epochs(tmp_path):
    from tfspk.train.report import TrainReport
    clock = FakeClock()
    report = TrainReport(str(tmp_path), log_every=5, stream=open(os.devnull, "w"))
    # a run resumed at epoch 2 of 3, 10 steps per epoch: steps 11..30
    for epoch in (2, 3):
        report.start_epoch(epoch, 10, 3, clock=clock)
        for i in range(1, 11):
            clock.now += 0.5
            report.step(epoch, i, 10, (epoch - 1) * 10 + i, 1.5, 0.25)
    report.close()
    lines = [line.split(" LOG ", 1)[1] for line in (tmp_path / "log" / "train.log").read_text().splitlines()]
    assert lines[0] == ("(tfspk-train[epoch 2]) progress: 15/30 steps (50%), 2 steps/s, elapsed 0:00:02, "
                        "ETA 0:00:08; epoch 2/3 step 5/10: loss 1.5000 accuracy 0.2500")
    assert [line.split("progress: ")[1].split(" ")[0] for line in lines] == ["15/30", "20/30", "25/30", "30/30"]
    assert "ETA 0:00:00; epoch 3/3 step 10/10" in lines[-1]


FAKE_TRAIN = r"""#!/usr/bin/env bash
dir=${!#}
mkdir -p "$dir/log" "$dir/final"
echo "some job output"
for i in 1 2 3; do
  echo "2026-01-01 00:00:0$i LOG (tfspk-train[epoch $i]) progress: $i/3 steps (x%); epoch $i/3" >> "$dir/log/train.log"
  echo "2026-01-01 00:00:0$i LOG (tfspk-train[epoch $i]) other line $i" >> "$dir/log/train.log"
  sleep 0.3
done
echo "2026-01-01 00:00:04 LOG (tfspk-train) done: 3 steps; model for extraction: $dir/final/model.weights.h5" \
  >> "$dir/log/train.log"
touch "$dir/final/model.weights.h5"
exit ${FAKE_STATUS:-0}
"""


@pytest.fixture
def fake_train_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tfspk-train").write_text(FAKE_TRAIN)
    (bin_dir / "tfspk-train").chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("feats.scp", "utt2spk", "utt2num_frames"):
        (data / name).write_text("u1 x\n")
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, data


def test_train_xvector_sh_shows_the_logs_progress_lines_while_the_job_runs(tmp_path, fake_train_env):
    # Before: under --cmd run.pl the terminal showed nothing until the training ended.
    env, data = fake_train_env
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "log").mkdir()
    (exp / "log" / "train.log").write_text("2025 LOG (tfspk-train[epoch 9]) progress: an earlier run\n")
    proc = run([str(REPO / "steps/train_xvector.sh"), "--cmd", "run.pl", str(data), str(exp)], env=env)
    shown = [line for line in proc.stdout.splitlines() if "LOG (tfspk-train" in line]
    assert [line.split(") ", 1)[1] for line in shown] == [
        "progress: 1/3 steps (x%); epoch 1/3", "progress: 2/3 steps (x%); epoch 2/3",
        "progress: 3/3 steps (x%); epoch 3/3", f"done: 3 steps; model for extraction: {exp}/final/model.weights.h5"]
    assert "some job output" not in proc.stdout        # the job's own output stays in its log


def test_train_xvector_sh_reports_a_failed_job(tmp_path, fake_train_env):
    env, data = fake_train_env
    proc = run([str(REPO / "steps/train_xvector.sh"), "--cmd", "run.pl", str(data), str(tmp_path / "exp")],
               env=dict(env, FAKE_STATUS="3"), check=False)
    assert proc.returncode != 0 and "training failed" in proc.stderr and "tfspk-train.log" in proc.stderr


def test_extraction_logs_progress_per_job(tmp_path, capsys):
    from tfspk.extract.run import extract_to_archive
    from tfspk.io.ark import write_archive

    class Extractor:  # the network is not what is tested: a fixed vector per utterance
        num_done = num_skipped = 0

        def extract(self, items):
            for utt, feats in items:
                self.num_done += 1
                yield utt, np.full(4, len(feats), np.float32)

    rng = np.random.default_rng(0)
    write_archive(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp",
                  [(f"u{i:04d}", rng.normal(size=(30, 5)).astype(np.float32)) for i in range(2500)])
    extract_to_archive(Extractor(), f"scp:{tmp_path}/f.scp", None, f"ark:{tmp_path}/x.ark", num_threads=1)
    progress = [line for line in capsys.readouterr().err.splitlines() if "progress:" in line]
    assert [line.split("progress: ")[1].split(",")[0] for line in progress] == [
        "1000/2500 utterances (40%)", "2000/2500 utterances (80%)", "2500/2500 utterances (100%)"]
    assert "ETA" in progress[0] and "utterances/s" in progress[0]
    # an archive (no scp): no total known, no ETA
    extract_to_archive(Extractor(), f"ark:{tmp_path}/f.ark", None, f"ark:{tmp_path}/y.ark", num_threads=1)
    progress = [line for line in capsys.readouterr().err.splitlines() if "progress:" in line]
    assert progress[0].split("progress: ")[1].startswith("1000 utterances, ") and "ETA" not in progress[0]

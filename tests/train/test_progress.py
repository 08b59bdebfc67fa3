"""What a training run reports as it goes: the progress line (the compiling first batch
is announced and kept out of the rate) and the labels of its spike metrics."""

import io

from eventax.train import progress


def _clock(monkeypatch, times):
    ticks = iter(times)
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(ticks))


def test_the_compiling_batch_is_announced_and_left_out_of_the_rate(monkeypatch):
    # start at 0; the first batch of 100 samples ends at 30 s (compiling), the next two at 31 and 32
    _clock(monkeypatch, [0.0, 30.0, 31.0, 32.0])
    out = io.StringIO()
    bar = progress.Progress(3, "epoch 1/5", stream=out, compiles=True)
    for i in range(3):
        bar.update(i + 1, 100 * (i + 1), loss=0.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "compiling" in lines[0]
    assert "100 samples/s" in lines[1] and "compiled in 30 s" in lines[1]  # 200 samples in 2 s


def test_without_compilation_the_rate_is_over_the_whole_epoch(monkeypatch):
    _clock(monkeypatch, [0.0, 1.0, 2.0])
    out = io.StringIO()
    bar = progress.Progress(2, "epoch 2/5", stream=out)
    bar.update(1, 100)
    bar.update(2, 200)
    bar.close()
    (line,) = out.getvalue().splitlines()
    assert "100 samples/s" in line and "compil" not in line


def test_spike_metrics_say_until_when_they_count():
    from eventax.losses import StateLoss, TTFSLoss
    from eventax.train.metrics import spike_window

    assert spike_window(TTFSLoss()) == "first output spike"
    assert [spike_window(StateLoss(k, 30.0)) for k in ("max", "integral", "exp_integral")] == ["trial end"] * 3

"""The whole SummaryWriter surface against the real logd: every add_* call lands in a file a
person can open (PNG, animated PNG, WAV, JSON, TSV), histograms also as summary metrics, steps
and walltimes as tensorboardX records them, and every refused argument counted.

Pure-Python inputs (nested lists) are used so that the suite needs no numpy; the numpy and
matplotlib paths run when those are installed."""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import tarfile
import wave
import zlib

import pytest
import yaml

import logd
from conftest import metric_rows, read_text



@pytest.fixture(autouse=True)
def _env(daemon, monkeypatch, tmp_path):
    for name in ("LOGD_RUN_ID", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    monkeypatch.chdir(tmp_path)
    if logd.current_run() is not None:
        logd.end_run(timeout=2)
    yield


def _artifact(d: str, rel: str) -> str:
    nested = os.path.join(d, "artifacts", rel)
    assert os.path.exists(nested), "no artifact %s in %s: %s" % (rel, d, sorted(os.listdir(os.path.join(d, "artifacts"))))
    return nested


def read_png(path: str):
    """(width, height, channels, pixel bytes) of a non-interlaced 8-bit PNG; frames for APNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, chunks = 8, b"", []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    c = {0: 1, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * c
    rows = [raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)] for y in range(h)]
    assert all(raw[y * (stride + 1)] == 0 for y in range(h))
    return w, h, c, b"".join(rows), chunks


def _dir(daemon, experiment: str) -> str:
    logd.control.flush(socket=daemon.socket)
    return daemon.run_dir(experiment)


def test_images_land_as_png_per_tag_and_step(daemon):
    w = logd.SummaryWriter("img/a")
    chw = [[[0.0, 1.0], [0.5, 0.25]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]  # 3 x 2 x 2
    w.add_image("pics/one", chw, 3)
    w.add_image("gray", [[0, 255], [128, 64]], dataformats="HW")  # ints, HW, no step -> 0
    w.add_images("batch", [chw] * 10, 1)  # N=10 -> a grid of 8 columns, 2 rows
    w.add_images("listed", [chw, chw], 2, dataformats="CHW")  # a list of CHW images
    w.add_image_with_boxes("boxed", [[[0.0] * 8] * 8] * 3, [[1, 1, 4, 4]], 0)
    w.close()
    assert w.run.errors == 0, w.run.last_error
    d = _dir(daemon, "img")
    width, height, c, px, _ = read_png(_artifact(d, "images/pics/one/3.png"))
    assert (width, height, c) == (2, 2, 3)
    assert px[0:3] == bytes([0, 0, 255]) and px[3:6] == bytes([255, 0, 255])
    assert px[6:9] == bytes([127, 0, 255]) and px[9:12] == bytes([63, 0, 255])
    width, height, c, px, _ = read_png(_artifact(d, "images/gray/0.png"))
    assert (width, height, c) == (2, 2, 3)
    assert px[0:3] == bytes([0, 0, 0])  # ints are scaled like floats in tensorboardX (x255, clipped)
    assert read_png(_artifact(d, "images/batch/1.png"))[:3] == (16, 4, 3)
    assert read_png(_artifact(d, "images/listed/2.png"))[:3] == (4, 2, 3)
    width, height, c, px, _ = read_png(_artifact(d, "images/boxed/0.png"))
    assert (width, height) == (8, 8)
    red = [(x, y) for y in range(8) for x in range(8) if px[(y * 8 + x) * 3:(y * 8 + x) * 3 + 3] == b"\xff\x00\x00"]
    assert len(red) == 12 and (1, 1) in red and (4, 4) in red and (2, 2) not in red


def test_histograms_are_summary_metrics_plus_raw_bins(daemon):
    w = logd.SummaryWriter("hist/a")
    values = [float(i) for i in range(101)]  # 0..100
    w.add_histogram("weights", values, 7)
    w.add_histogram("weights", [1.0, 2.0], 8, bins=[0.0, 1.5, 3.0])
    w.add_histogram_raw("raw", min=0, max=4, num=4, sum=6, sum_squares=14, bucket_limits=[2, 4],
                        bucket_counts=[2, 2], global_step=1)
    w.close()
    assert w.run.errors == 0, w.run.last_error
    d = _dir(daemon, "hist")
    rows = {(r["key"], r["step"]): float(r["value"]) for r in metric_rows(d)}
    assert rows[("weights/min", "7")] == 0 and rows[("weights/max", "7")] == 100
    assert rows[("weights/mean", "7")] == 50 and rows[("weights/p50", "7")] == 50
    assert rows[("weights/p5", "7")] == 5 and rows[("weights/p95", "7")] == 95
    assert abs(rows[("weights/std", "7")] - 29.1547594742265) < 1e-9
    assert rows[("raw/mean", "1")] == 1.5 and abs(rows[("raw/std", "1")] - 1.118033988749895) < 1e-12
    bins = json.loads(read_text(_artifact(d, "histograms/weights/7.json")))
    assert bins["num"] == 101 and sum(bins["bucket_counts"]) == 101 and len(bins["bucket_limits"]) == 30
    bins = json.loads(read_text(_artifact(d, "histograms/weights/8.json")))
    assert bins["bucket_limits"] == [1.5, 3.0] and bins["bucket_counts"] == [1, 1]
    raw = json.loads(read_text(_artifact(d, "histograms/raw/1.json")))
    assert raw["bucket_counts"] == [2, 2] and raw["sum_squares"] == 14


def test_audio_video_text_curves_meshes_embeddings_graphs(daemon, tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not really onnx")
    w = logd.SummaryWriter("media/a")
    w.add_audio("voice", [0.0, 0.5, -0.5, 2.0], 2, sample_rate=8000)
    video = [[[[[0.0, 1.0], [1.0, 0.0]]] for _t in range(3)]]  # N=1, T=3, C=1, H=2, W=2
    w.add_video("clip", video, 4, fps=2)
    w.add_text("notes", "# hello\n\n|a|b|", 5)
    w.add_pr_curve("pr", [1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1], 6, num_thresholds=3)
    w.add_pr_curve_raw("prraw", [3, 2], [2, 1], [0, 1], [0, 1], [0.6, 0.66], [1.0, 0.66], 6)
    w.add_mesh("cube", [[[0, 0, 0], [1, 0, 0], [0, 1, 0]]], faces=[[[0, 1, 2]]], global_step=1)
    w.add_embedding([[1.0, 2.0], [3.0, 4.0]], metadata=["a", "b"], tag="emb", global_step=3)
    w.add_graph(Model())
    w.add_onnx_graph(str(onnx))
    w.add_custom_scalars_multilinechart(["loss", "acc"], category="main", title="curves")
    w.close()
    assert w.run.errors == 0, w.run.last_error
    d = _dir(daemon, "media")
    with wave.open(_artifact(d, "audio/voice/2.wav")) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (1, 2, 8000, 4)
        assert struct.unpack("<4h", f.readframes(4)) == (0, 16383, -16383, 32767)
    width, height, c, px, chunks = read_png(_artifact(d, "videos/clip/4.png"))
    actl = [b for k, b in chunks if k == b"acTL"]
    assert struct.unpack(">II", actl[0]) == (3, 0) and (width, height) == (2, 2)
    assert read_text(_artifact(d, "text/notes/5.md")) == "# hello\n\n|a|b|"
    pr = json.loads(read_text(_artifact(d, "pr_curves/pr/6.json")))
    assert pr["thresholds"] == [0.0, 0.5, 1.0]
    assert pr["true_positives"] == [2, 1, 0] and pr["false_positives"] == [2, 1, 0]
    assert json.loads(read_text(_artifact(d, "pr_curves/prraw/6.json")))["precision"] == [0.6, 0.66]
    mesh = json.loads(read_text(_artifact(d, "meshes/cube/1.json")))
    assert mesh["vertices"]["shape"] == [1, 3, 3] and mesh["faces"]["values"] == [0, 1, 2]
    assert read_text(_artifact(d, "embeddings/emb/3/tensors.tsv")) == "1.0\t2.0\n3.0\t4.0\n"
    assert read_text(_artifact(d, "embeddings/emb/3/metadata.tsv")) == "a\nb\n"
    assert "Model()" in read_text(_artifact(d, "graphs/Model.txt"))
    assert open(_artifact(d, "graphs/model.onnx"), "rb").read() == b"not really onnx"
    cfg = yaml.safe_load(read_text(os.path.join(d, "config.yaml")))
    assert cfg["tensorboard"]["custom_scalars"] == {"main": {"curves": ["Multiline", ["loss", "acc"]]}}


class Model:
    def parameters(self):
        return []

    def __repr__(self):
        return "Model()"


def test_steps_walltimes_and_use_metadata(daemon):
    w = logd.SummaryWriter("steps/a")
    w.add_scalar("plain", 1.0)  # no step: 0, as tensorboardX records it
    with w.use_metadata(global_step=17, walltime=13.0):
        w.add_scalar("defaults", 0.1)
        w.add_scalar("own_step", 0.2, global_step=7)
        w.add_scalar("own_time", 0.3, walltime=18.0)
    w.add_scalar("after", 0.4)
    w.add_scalar("new_style", 0.5, 3, new_style=True, double_precision=True)
    w.close()
    rows = {r["key"]: r for r in metric_rows(_dir(daemon, "steps"))}
    assert {k: r["step"] for k, r in rows.items()} == {
        "plain": "0", "defaults": "17", "own_step": "7", "own_time": "17", "after": "0", "new_style": "3"}
    assert rows["defaults"]["time"] == "1970-01-01T00:00:13.000Z"
    assert rows["own_step"]["time"] == "1970-01-01T00:00:13.000Z"
    assert rows["own_time"]["time"] == "1970-01-01T00:00:18.000Z"
    assert not rows["after"]["time"].startswith("1970")


def test_constructor_attributes_logdir_and_lifecycle(daemon, tmp_path):
    import pathlib

    w = logd.SummaryWriter(pathlib.Path("life") / "x", comment="_c", flush_secs=1, max_queue=5,
                           filename_suffix=".s")
    assert w.logdir == w.log_dir == w.get_logdir() == pathlib.Path("life") / "x"
    assert w.file_writer.get_logdir() == w.logdir and list(w.all_writers) == [w.logdir]
    pointer = yaml.safe_load(read_text(str(tmp_path / "life" / "x" / "logd-run.yaml")))
    assert pointer["run_id"] == w.run.run_id and pointer["experiment"] == "life"
    w.add_scalars("grp", {"a": 1, "b": 2.5}, 4)
    w.export_scalars_to_json(str(tmp_path / "s.json"))
    exported = json.loads((tmp_path / "s.json").read_text())
    assert sorted(exported) == [os.path.join("life", "x", "grp", "a"), os.path.join("life", "x", "grp", "b")]
    assert [v[1:] for v in exported[os.path.join("life", "x", "grp", "b")]] == [[4, 2.5]]
    with w:
        pass
    assert w.file_writer is None and w.run.finished
    w.add_scalar("after_close", 1.0, 9)  # tensorboardX reopens: same run id, a new session
    w.close()
    logd.control.flush(socket=daemon.socket)
    dirs = daemon.run_dirs("life")
    assert sorted(r["key"] for d in dirs for r in metric_rows(d)) == ["after_close", "grp/a", "grp/b"]
    default = logd.SummaryWriter(comment="_lr0.1")
    assert str(default.logdir).startswith("runs" + os.sep) and str(default.logdir).endswith("_lr0.1")
    assert os.path.isdir(default.logdir) and default.run.name == os.path.basename(default.logdir)
    default.close()
    off = logd.SummaryWriter("nodisk/x", write_to_disk=False)
    off.add_scalar("x", 1.0, 0)
    off.close()
    assert not os.path.exists("nodisk")
    assert len(dirs) == 1, "one run id, one directory: %s" % dirs


def test_hparams_trials_stay_apart(daemon):
    with logd.SummaryWriter("hp/a") as w:
        for i, lr in enumerate((0.1, 0.01)):
            if i == 0:  # tensorboardX's signature, name third
                w.add_hparams({"lr": lr, "bn": True}, {"accuracy": i, "loss": 1 - i}, "trial0")
            else:  # torch.utils.tensorboard's, run_name
                w.add_hparams({"lr": lr, "bn": True}, {"accuracy": i, "loss": 1 - i}, run_name="trial1")
        w.add_hparams({"lr": 1.0}, {"accuracy": 5})  # no name: the time, as tensorboardX
    d = _dir(daemon, "hp")
    cfg = yaml.safe_load(read_text(os.path.join(d, "config.yaml")))["hparams"]
    assert cfg["trial0"] == {"lr": 0.1, "bn": True} and cfg["trial1"] == {"lr": 0.01, "bn": True}
    [stamp] = [k for k in cfg if not k.startswith("trial")]
    assert float(stamp) > 1.6e9
    keys = sorted(r["key"] for r in metric_rows(d))
    assert keys == sorted(["trial0/accuracy", "trial0/loss", "trial1/accuracy", "trial1/loss", stamp + "/accuracy"])


def test_purge_step_continues_the_same_run_id(daemon):
    w = logd.SummaryWriter("purge/a")
    for step in range(10):
        w.add_scalar("loss", float(step), step)
    first = w.run.run_id
    w.close()
    w2 = logd.SummaryWriter("purge/a", purge_step=5)
    assert w2.run.run_id == first
    for step in range(5, 8):
        w2.add_scalar("loss", 100.0 + step, step)
    w2.close()
    logd.control.flush(socket=daemon.socket)
    dirs = daemon.run_dirs("purge")
    rows = [r for d in dirs for r in metric_rows(d)]
    assert len(rows) == 13
    cfgs = [yaml.safe_load(read_text(os.path.join(d, "config.yaml")) or "{}") or {} for d in dirs]
    assert any(c.get("tensorboard", {}).get("purge_step") == 5 for c in cfgs)
    assert len(dirs) == 1, "one run id, one directory: %s" % dirs


def test_every_refused_argument_is_counted(daemon, tmp_path):
    w = logd.SummaryWriter("errors/a")
    bad = [
        lambda: w.add_scalar("s", "nan?"),
        lambda: w.add_scalar("s", 1.0, "step"),
        lambda: w.add_image("i", object()),
        lambda: w.add_image("i", [[1, 2], [3]], dataformats="HW"),  # ragged
        lambda: w.add_image("i", [[[0.0]]], dataformats="XYZ"),
        lambda: w.add_images("i", [[[[0.0, 0.0]]]], dataformats="NHWC"),  # 2 channels
        lambda: w.add_histogram("h", []),
        lambda: w.add_histogram("h", [1.0], bins=[2.0, 1.0]),
        lambda: w.add_histogram_raw("h", 0, 1, 1, 1, 1, [1, 2], [1]),
        lambda: w.add_audio("a", [[0.0, 1.0], [0.0, 1.0]]),
        lambda: w.add_video("v", [[0.0]]),
        lambda: w.add_pr_curve("p", [1, 0], [0.5]),
        lambda: w.add_embedding([1.0, 2.0]),
        lambda: w.add_hparams([("lr", 1)], {}),
        lambda: w.add_text("t", "x", "step"),
        lambda: w.add_onnx_graph(str(tmp_path / "missing.onnx")),
        lambda: w.add_custom_scalars_marginchart(["a"]),
        lambda: w.export_scalars_to_json(str(tmp_path / "no" / "such" / "dir.json")),
    ]
    for i, call in enumerate(bad):
        before = w.run.errors
        call()
        assert w.run.errors == before + 1, (i, w.run.last_error)
    w.add_scalar("fine", 1.0, 0)
    w.close()
    assert [r["key"] for r in metric_rows(_dir(daemon, "errors"))] == ["fine"]


def test_log_artifact_counts_unreadable_paths_and_archives_directories(daemon, tmp_path):
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01")
    run = logd.Run(experiment="dirs", name="d")
    assert run.log_artifact(src)
    assert run.save_model_version(str(src), "net")
    assert not run.log_artifact(tmp_path / "missing")
    assert not run.log_artifact("/dev/null")  # neither a file nor a directory
    assert run.errors == 2 and "/dev/null" in run.last_error
    run.finish()
    d = _dir(daemon, "dirs")
    with tarfile.open(os.path.join(d, "artifacts", "ckpt.tar")) as tar:
        assert sorted(tar.getnames()) == ["ckpt", "ckpt/a.txt", "ckpt/sub", "ckpt/sub/b.bin"]
        assert tar.extractfile("ckpt/sub/b.bin").read() == b"\x00\x01"
    assert os.path.exists(os.path.join(d, "models", "net", "v1", "ckpt.tar"))


def _global_child(writer, n):
    for i in range(n):
        writer.add_scalar("shared", float(i))


def test_global_summary_writer_counts_steps_across_forked_processes(daemon):
    w = logd.GlobalSummaryWriter("global/a")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_global_child, args=(w, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    w.add_text("done", "all joined")
    w.close()
    assert w.file_writer is None
    rows = [r for r in metric_rows(_dir(daemon, "global")) if r["key"] == "shared"]
    assert sorted(int(r["step"]) for r in rows) == list(range(100))  # every step once
    assert sorted(float(r["value"]) for r in rows) == sorted(float(i) for i in range(25) for _ in range(4))


def test_numpy_and_matplotlib_inputs(daemon):
    np = pytest.importorskip("numpy")
    w = logd.SummaryWriter("np/a")
    w.add_images("batch", np.zeros((32, 3, 16, 16)), 0)
    w.add_image("hwc", (np.ones((4, 5, 3)) * 255).astype(np.uint8), 1, dataformats="HWC")
    w.add_histogram("normal", np.random.default_rng(0).normal(size=10000), 2, bins="auto")
    w.add_scalar("np_scalar", np.float32(0.25), 3)
    try:
        import matplotlib
        matplotlib.use("agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        fig = plt.figure(figsize=(2, 1), dpi=50)
        plt.plot([0, 1], [0, 1])
        w.add_figure("fig", fig, 4, close=False)
        assert plt.fignum_exists(fig.number)
        w.add_figure("fig", [fig, fig], 5)
        assert not plt.fignum_exists(fig.number)
    w.close()
    assert w.run.errors == 0, w.run.last_error
    d = _dir(daemon, "np")
    assert read_png(_artifact(d, "images/batch/0.png"))[:3] == (128, 64, 3)
    w_, h_, c_, px, _ = read_png(_artifact(d, "images/hwc/1.png"))
    assert (w_, h_, c_) == (5, 4, 3) and set(px) == {255}
    if plt is not None:
        assert read_png(_artifact(d, "images/fig/4.png"))[:2] == (100, 50)
        assert read_png(_artifact(d, "images/fig/5.png"))[:2] == (200, 50)

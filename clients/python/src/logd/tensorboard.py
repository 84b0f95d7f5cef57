"""``SummaryWriter`` and ``GlobalSummaryWriter`` with tensorboardX's (and
``torch.utils.tensorboard``'s) signatures, writing into a logd run.

``from logd import SummaryWriter`` replaces ``from tensorboardX import SummaryWriter`` (or
``from torch.utils.tensorboard import SummaryWriter``) in an existing script. What lands where
(paths under the run directory; ``<step>`` is the global step, 0 when none is given):

- ``add_scalar`` -> metric ``tag``; ``add_scalars(main, {t: v})`` -> metrics ``main/t``;
- ``add_histogram`` -> metrics ``tag/min max mean std p5 p25 p50 p75 p95`` and the bins as
  ``artifacts/histograms/<tag>/<step>.json``; ``add_histogram_raw`` the same from its counts;
- ``add_image(s)``, ``add_image_with_boxes``, ``add_figure`` -> ``artifacts/images/<tag>/<step>.png``
  (a batch or a list of figures as one grid); ``add_video`` -> ``artifacts/videos/<tag>/<step>.png``
  (animated PNG); ``add_audio`` -> ``artifacts/audio/<tag>/<step>.wav``;
- ``add_text`` -> a main.log line from logger ``tag`` and ``artifacts/text/<tag>/<step>.md``;
- ``add_pr_curve(_raw)`` -> ``artifacts/pr_curves/<tag>/<step>.json``; ``add_mesh`` ->
  ``artifacts/meshes/<tag>/<step>.json``; ``add_embedding`` ->
  ``artifacts/embeddings/<tag>/<step>/tensors.tsv`` (+ ``metadata.tsv``, ``sprite.png``);
- ``add_graph(model)`` -> the model's description (``models/<name>/model.yaml``) and
  ``artifacts/graphs/<name>.txt``; ``add_onnx_graph(path)`` -> ``artifacts/graphs/<file>``;
- ``add_hparams(h, m, name)`` -> config ``hparams/<name>`` and metrics ``<name>/<tag>`` (the
  name defaults to the time, as in tensorboardX, so trials stay apart);
- ``add_custom_scalars*`` -> config ``tensorboard/custom_scalars``.

If a run is current (``logd.start_run``), the writer logs into it and ``close`` leaves it open;
otherwise the writer starts a run of its own (experiment and name from ``logdir``:
``runs/exp1`` -> experiment ``runs``, run ``exp1``) and ``close`` finishes it. The writer creates
``logdir`` and leaves ``logd-run.yaml`` there (which run it wrote to); a writer opened later on
the same ``logdir`` with ``purge_step`` continues that run id. Nothing raises into the training
loop: a refused argument is counted in ``writer.run.errors``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import math
import os
import socket
import time
from datetime import datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional

from .run import Run, _time_ns

_log = logging.getLogger("logd")

POINTER_FILE = "logd-run.yaml"


class _FileWriter:
    """What tensorboardX scripts reach through ``writer.file_writer``: the log directory,
    ``flush``, ``close``, ``reopen`` and ``use_metadata``."""

    def __init__(self, owner: "SummaryWriter") -> None:
        self._owner = owner

    def get_logdir(self) -> Any:
        return self._owner.logdir

    def flush(self) -> None:
        self._owner.flush()

    def close(self) -> None:
        self._owner.close()

    def reopen(self) -> None:
        self._owner._reopen()

    def use_metadata(self, *, global_step: Optional[int] = None, walltime: Optional[float] = None):
        return self._owner.use_metadata(global_step=global_step, walltime=walltime)


class SummaryWriter:
    """tensorboardX's ``SummaryWriter`` into a logd run (see the module's documentation)."""

    def __init__(self, logdir: Optional[Any] = None, comment: str = "", purge_step: Optional[int] = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "",
                 write_to_disk: bool = True, log_dir: Optional[Any] = None, comet_config: Any = None, *,
                 run: Optional[Run] = None, context: str = "training", **kwargs: Any) -> None:
        from .api import current_run

        if log_dir is not None and logdir is None:
            logdir = log_dir
        default_logdir = not logdir
        if default_logdir:
            logdir = os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname()
                                  + (comment or ""))
        self.logdir: Any = logdir  # a str or os.PathLike, never None from here on
        self.purge_step = purge_step
        self.context = context
        self.kwargs = kwargs
        # tag -> [[walltime, step (None when not given), value], ...]
        self.scalar_dict: Dict[str, List[List[Optional[float]]]] = {}
        self._write_to_disk = bool(write_to_disk)
        self._max_queue, self._flush_secs, self._filename_suffix = max_queue, flush_secs, filename_suffix
        self._default_metadata: Dict[str, Any] = {}
        self._closed = False
        if run is None:
            run = current_run()
        self._owns_run = run is None
        if run is None:
            experiment, name = _names(logdir, "" if default_logdir else comment)
            run = Run(experiment=experiment, name=name, run_id=self._earlier_run_id(),
                      sink="daemon" if self._write_to_disk else "none")
        self.run = run
        self._prepare_logdir()
        if purge_step is not None:
            self.run.log("purge_step %d: rows at or past step %d from earlier sessions of this run are "
                         "superseded" % (int(purge_step), int(purge_step)), "INFO", "tensorboard")
            self.run.log_params({"tensorboard": {"purge_step": int(purge_step)}})
        self.file_writer: Optional[_FileWriter] = _FileWriter(self)
        self.all_writers: Optional[Dict[Any, _FileWriter]] = {self.logdir: self.file_writer}

    # -- the log directory ------------------------------------------------------------------------

    @property
    def log_dir(self) -> Any:  # torch.utils.tensorboard's name
        return self.logdir

    def get_logdir(self) -> Any:
        return self.logdir

    def _pointer(self) -> str:
        return os.path.join(os.fspath(self.logdir), POINTER_FILE)

    def _earlier_run_id(self) -> Optional[str]:
        """With ``purge_step``, the run id an earlier writer on this logdir wrote to."""
        if self.purge_step is None or not self._write_to_disk:
            return None
        try:
            with open(self._pointer(), encoding="utf-8") as f:
                for line in f:
                    if line.startswith("run_id: "):
                        return json.loads(line[len("run_id: "):])
        except (OSError, ValueError):
            pass
        return None

    def _prepare_logdir(self) -> None:
        if not self._write_to_disk:
            return
        try:
            os.makedirs(os.fspath(self.logdir), exist_ok=True)
            r = self.run
            text = "".join("%s: %s\n" % (k, json.dumps(v)) for k, v in (
                ("run_id", r.run_id), ("experiment", r.experiment), ("name", r.name),
                ("socket", r.socket_path)))
            tmp = self._pointer() + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("# logd wrote this writer's records into the run below (logctl show <run_id>)\n" + text)
            os.replace(tmp, self._pointer())
        except OSError as exc:  # a read-only or odd logdir never stops the script
            self.run._bad_call("SummaryWriter(logdir=%r)" % (self.logdir,), exc)

    # -- steps and times --------------------------------------------------------------------------

    def _step(self, global_step: Any) -> int:
        if global_step is None:
            global_step = self._default_metadata.get("global_step")
        return 0 if global_step is None else int(global_step)

    def _stamp(self, walltime: Any) -> Optional[int]:
        if walltime is None:
            walltime = self._default_metadata.get("walltime")
        return None if walltime is None else int(float(walltime) * 1e9)

    @contextlib.contextmanager
    def use_metadata(self, *, global_step: Optional[int] = None, walltime: Optional[float] = None) -> Iterator["SummaryWriter"]:
        """Default ``global_step`` / ``walltime`` for the ``add_*`` calls inside the block."""
        assert not self._default_metadata, "Default metadata is already set."
        assert global_step is not None or walltime is not None, \
            "At least one of `global_step` or `walltime` must be provided."
        self._default_metadata = {"global_step": global_step, "walltime": walltime}
        try:
            yield self
        finally:
            self._default_metadata = {}

    def _live(self) -> Run:
        """The run to log into; after ``close`` (tensorboardX reopens its file) a new session
        of the same run."""
        if self._closed:
            self._reopen()
        return self.run

    def _reopen(self) -> None:
        if not self._closed:
            return
        self._closed = False
        if self._owns_run and self.run.finished:
            r = self.run
            self.run = Run(experiment=r.experiment, name=r.name, run_id=r.run_id, socket=r.socket_path,
                           sink=r.sink)
        self.file_writer = _FileWriter(self)
        self.all_writers = {self.logdir: self.file_writer}

    def _bad(self, what: str, exc: BaseException) -> None:
        self.run._bad_call("SummaryWriter.%s" % what, exc)

    # -- scalars ----------------------------------------------------------------------------------

    def add_scalar(self, tag: str, scalar_value: Any, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, display_name: str = "", summary_description: str = "",
                   new_style: bool = False, double_precision: bool = False) -> None:
        run = self._live()
        try:
            value = _number(scalar_value)
            if global_step is None and walltime is None and not self._default_metadata:
                run.log_metric(tag, value, 0, self.context)
                return
            step = self._step(global_step)
            ts = self._stamp(walltime)
        except Exception as exc:  # like Run.log_metric: counted, never raised into the loop
            self._bad("add_scalar(%r)" % (tag,), exc)
            return
        if ts is None:
            run.log_metric(tag, value, step, self.context)
        else:
            run._metric_at(tag, value, step, self.context, ts)

    def add_scalars(self, main_tag: str, tag_scalar_dict: Mapping[str, Any], global_step: Optional[int] = None,
                    walltime: Optional[float] = None) -> None:
        try:
            items = list(tag_scalar_dict.items())
            wall = time.time() if walltime is None else float(walltime)
        except Exception as exc:
            self._bad("add_scalars(%r)" % (main_tag,), exc)
            return
        for tag, value in items:
            self.add_scalar("%s/%s" % (main_tag, tag), value, global_step, walltime)
            try:  # kept for export_scalars_to_json, as tensorboardX does
                key = os.path.join(os.fspath(self.logdir), str(main_tag), str(tag))
                self.scalar_dict.setdefault(key, []).append(
                    [wall, global_step, _number(value)])
            except Exception:
                pass

    def export_scalars_to_json(self, path: Any) -> None:
        """Writes what ``add_scalars`` logged so far (``{tag: [[walltime, step, value], ...]}``)
        to ``path`` and forgets it, as tensorboardX does."""
        try:
            with open(path, "w") as f:
                json.dump(self.scalar_dict, f)
            self.scalar_dict = {}
        except Exception as exc:
            self._bad("export_scalars_to_json(%r)" % (path,), exc)

    # -- text, hparams ------------------------------------------------------------------------------

    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None:
        run = self._live()
        try:
            text = str(text_string)
            step = self._step(global_step)
            ts = self._stamp(walltime)
            line = text if global_step is None and "global_step" not in self._default_metadata else \
                "step %d: %s" % (step, text)
        except Exception as exc:
            self._bad("add_text(%r)" % (tag,), exc)
            return
        run.log(line, "INFO", tag, ts)
        self._artifact("text", tag, step, ".md", lambda: text.encode("utf-8"), ts, "add_text")

    def add_hparams(self, hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, Any],
                    hparam_domain_discrete: Optional[Mapping[str, Any]] = None, name: Optional[str] = None,
                    global_step: Optional[int] = None, run_name: Optional[str] = None) -> None:
        run = self._live()
        try:
            if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
                raise TypeError("hparam_dict and metric_dict should be dictionary.")
            if isinstance(hparam_domain_discrete, str):  # tensorboardX's third argument is the name
                name, hparam_domain_discrete = hparam_domain_discrete, None
            trial = str(name or run_name or time.time())
            run.log_params({"hparams": {trial: dict(hparam_dict)}})
        except Exception as exc:
            self._bad("add_hparams", exc)
            return
        for tag, value in metric_dict.items():
            self.add_scalar("%s/%s" % (trial, tag), value, global_step)

    # -- files: images, audio, video, histograms, curves ----------------------------------------

    def _artifact(self, kind: str, tag: str, step: int, suffix: str, make, ts: Optional[int], what: str) -> bool:
        run = self._live()
        try:
            data = make()
            return run._log_bytes("%s/%s/%d%s" % (kind, _safe_tag(tag), step, suffix), data, step,
                                  self.context, ts)
        except Exception as exc:
            self._bad("%s(%r)" % (what, tag), exc)
            return False

    def add_image(self, tag: str, img_tensor: Any, global_step: Optional[int] = None,
                  walltime: Optional[float] = None, dataformats: str = "CHW") -> None:
        self._image(tag, img_tensor, global_step, walltime, dataformats, "add_image")

    def add_images(self, tag: str, img_tensor: Any, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, dataformats: str = "NCHW") -> None:
        if isinstance(img_tensor, (list, tuple)) and dataformats.upper() in ("CHW", "HWC"):
            # tensorboardX: a list of CHW (or HWC) images, stacked into one batch
            try:
                m = _media()
                if m._np is not None:
                    img_tensor = m._np.stack([m._np.asarray(getattr(x, "detach", lambda: x)()) for x in img_tensor])
                else:
                    arrays = [m.to_array(x) for x in img_tensor]
                    img_tensor = m.Array((len(arrays),) + arrays[0].shape, [v for a in arrays for v in a.flat])
                dataformats = "N" + dataformats
            except Exception as exc:
                self._bad("add_images(%r)" % (tag,), exc)
                return
        self._image(tag, img_tensor, global_step, walltime, dataformats, "add_images")

    def _image(self, tag, img_tensor, global_step, walltime, dataformats, what, boxes=None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("%s(%r)" % (what, tag), exc)
            return

        def make() -> bytes:
            img = _media().image_from(img_tensor, dataformats)
            if boxes is not None:
                _media().draw_boxes(img, boxes)
            return _media().png(img)

        self._artifact("images", tag, step, ".png", make, ts, what)

    def add_image_with_boxes(self, tag: str, img_tensor: Any, box_tensor: Any, global_step: Optional[int] = None,
                             walltime: Optional[float] = None, dataformats: str = "CHW",
                             labels: Optional[List[str]] = None, **kwargs: Any) -> None:
        """The image with each box (``[x1, y1, x2, y2]``, pixels) drawn as a red outline; the
        labels, if any, go into the config under ``tensorboard/box_labels/<tag>``."""
        self._image(tag, img_tensor, global_step, walltime, dataformats, "add_image_with_boxes", box_tensor)
        if labels is not None:
            self._live().log_params({"tensorboard": {"box_labels": {str(tag): [str(x) for x in (
                [labels] if isinstance(labels, str) else labels)]}}})

    def add_figure(self, tag: str, figure: Any, global_step: Optional[int] = None, close: bool = True,
                   walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_figure(%r)" % (tag,), exc)
            return

        def make() -> bytes:
            if isinstance(figure, (list, tuple)):
                return _media().png(_media().grid([_media().figure_image(f, close) for f in figure]))
            return _media().png(_media().figure_image(figure, close))

        self._artifact("images", tag, step, ".png", make, ts, "add_figure")

    def add_video(self, tag: str, vid_tensor: Any, global_step: Optional[int] = None, fps: float = 4,
                  walltime: Optional[float] = None, dataformats: str = "NTCHW") -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_video(%r)" % (tag,), exc)
            return
        self._artifact("videos", tag, step, ".png",
                       lambda: _media().apng(_media().video_frames(vid_tensor, dataformats), float(fps)), ts,
                       "add_video")

    def add_audio(self, tag: str, snd_tensor: Any, global_step: Optional[int] = None, sample_rate: int = 44100,
                  walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_audio(%r)" % (tag,), exc)
            return
        self._artifact("audio", tag, step, ".wav", lambda: _media().wav(snd_tensor, sample_rate), ts, "add_audio")

    def add_histogram(self, tag: str, values: Any, global_step: Optional[int] = None, bins: Any = "tensorflow",
                      walltime: Optional[float] = None, max_bins: Optional[int] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
            h = _media().histogram(values, bins, max_bins)
        except Exception as exc:
            self._bad("add_histogram(%r)" % (tag,), exc)
            return
        self._histogram(tag, h, step, ts)

    def add_histogram_raw(self, tag: str, min: float, max: float, num: int, sum: float, sum_squares: float,
                          bucket_limits: Any, bucket_counts: Any, global_step: Optional[int] = None,
                          walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
            limits = [float(v) for v in _media().to_array(bucket_limits).flat]
            counts = [float(v) for v in _media().to_array(bucket_counts).flat]
            if len(limits) != len(counts):
                raise ValueError("len(bucket_limits) != len(bucket_counts)")
            n = float(num)
            mean = float(sum) / n if n else 0.0
            std = math.sqrt(builtins.max(0.0, float(sum_squares) / n - mean * mean)) if n else 0.0
            h = {"min": float(min), "max": float(max), "num": n, "sum": float(sum),
                 "sum_squares": float(sum_squares), "mean": mean, "std": std,
                 "bucket_limits": limits, "bucket_counts": counts}
        except Exception as exc:
            self._bad("add_histogram_raw(%r)" % (tag,), exc)
            return
        self._histogram(tag, h, step, ts)

    def _histogram(self, tag: str, h: Dict[str, Any], step: int, ts: Optional[int]) -> None:
        run = self._live()
        stamp = _time_ns() if ts is None else ts
        for k in ("min", "max", "mean", "std") + tuple("p%d" % round(q * 100) for q in _media().QUANTILES):
            if k in h:
                run._metric_at("%s/%s" % (tag, k), h[k], step, self.context, stamp)
        self._artifact("histograms", tag, step, ".json", lambda: json.dumps(h).encode(), ts, "add_histogram")

    def add_pr_curve(self, tag: str, labels: Any, predictions: Any, global_step: Optional[int] = None,
                     num_thresholds: int = 127, weights: Any = None, walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_pr_curve(%r)" % (tag,), exc)
            return
        self._artifact("pr_curves", tag, step, ".json", lambda: json.dumps(
            _media().pr_curve(labels, predictions, num_thresholds, weights)).encode(), ts, "add_pr_curve")

    def add_pr_curve_raw(self, tag: str, true_positive_counts: Any, false_positive_counts: Any,
                         true_negative_counts: Any, false_negative_counts: Any, precision: Any, recall: Any,
                         global_step: Optional[int] = None, num_thresholds: int = 127, weights: Any = None,
                         walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_pr_curve_raw(%r)" % (tag,), exc)
            return

        def make() -> bytes:
            cols = [_media().to_array(v).flat for v in (true_positive_counts, false_positive_counts,
                                                       true_negative_counts, false_negative_counts,
                                                       precision, recall)]
            if len({len(c) for c in cols}) != 1:
                raise ValueError("the six sequences differ in length")
            n = len(cols[0])
            return json.dumps({"thresholds": [i / max(1, n - 1) for i in range(n)],
                               "true_positives": cols[0], "false_positives": cols[1],
                               "true_negatives": cols[2], "false_negatives": cols[3],
                               "precision": cols[4], "recall": cols[5]}).encode()

        self._artifact("pr_curves", tag, step, ".json", make, ts, "add_pr_curve_raw")

    def add_mesh(self, tag: str, vertices: Any, colors: Any = None, faces: Any = None, config_dict: Any = None,
                 global_step: Optional[int] = None, walltime: Optional[float] = None) -> None:
        try:
            step, ts = self._step(global_step), self._stamp(walltime)
        except Exception as exc:
            self._bad("add_mesh(%r)" % (tag,), exc)
            return

        def part(v: Any) -> Any:
            if v is None:
                return None
            a = _media().to_array(v)
            return {"shape": list(a.shape), "values": a.flat}

        self._artifact("meshes", tag, step, ".json", lambda: json.dumps(
            {"vertices": part(vertices), "colors": part(colors), "faces": part(faces),
             "config": config_dict}).encode(), ts, "add_mesh")

    def add_embedding(self, mat: Any, metadata: Any = None, label_img: Any = None, global_step: Optional[int] = None,
                      tag: str = "default", metadata_header: Any = None) -> None:
        run = self._live()
        try:
            step = self._step(global_step)
            rows = _media().rows_of(mat)
            base = "embeddings/%s/%d/" % (_safe_tag(tag), step)
            files = [("tensors.tsv", _media().tsv(rows))]
            if metadata is not None:
                meta = list(metadata)
                if len(meta) != len(rows):
                    raise ValueError("#labels should equal #data points")
                if metadata_header is not None:
                    files.append(("metadata.tsv", _media().tsv(meta, metadata_header)))
                else:
                    files.append(("metadata.tsv", _media().tsv([[m] for m in meta])))
            if label_img is not None:
                files.append(("sprite.png", _media().png(_media().image_from(label_img, "NCHW"))))
        except Exception as exc:
            self._bad("add_embedding(%r)" % (tag,), exc)
            return
        for name, data in files:
            run._log_bytes(base + name, data, step, self.context)

    def add_graph(self, model: Any, input_to_model: Any = None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """The model's description (parameters, layers: ``models/<name>/model.yaml``) and its
        ``repr`` as ``artifacts/graphs/<name>.txt``; no trace is run."""
        run = self._live()
        try:
            name = type(model).__name__
            run.log_model(model, name)
            run._log_bytes("graphs/%s.txt" % _safe_tag(name), repr(model).encode("utf-8"), None, self.context)
        except Exception as exc:
            self._bad("add_graph", exc)

    def add_onnx_graph(self, onnx_model_file: Any) -> None:
        self._graph_file(onnx_model_file, "add_onnx_graph")

    def add_openvino_graph(self, xmlname: Any) -> None:
        self._graph_file(xmlname, "add_openvino_graph")

    def _graph_file(self, path: Any, what: str) -> None:
        run = self._live()
        try:
            with open(path, "rb") as f:
                data = f.read()
            run._log_bytes("graphs/%s" % _safe_tag(os.path.basename(os.fspath(path))), data, None, self.context)
        except Exception as exc:
            self._bad("%s(%r)" % (what, path), exc)

    def add_custom_scalars(self, layout: Mapping[str, Any]) -> None:
        try:
            self._live().log_params({"tensorboard": {"custom_scalars": dict(layout)}})
        except Exception as exc:
            self._bad("add_custom_scalars", exc)

    def add_custom_scalars_multilinechart(self, tags: List[str], category: str = "default",
                                          title: str = "untitled") -> None:
        self.add_custom_scalars({category: {title: ["Multiline", list(tags)]}})

    def add_custom_scalars_marginchart(self, tags: List[str], category: str = "default",
                                       title: str = "untitled") -> None:
        if len(tags) != 3:
            self._bad("add_custom_scalars_marginchart", ValueError("a margin chart takes 3 tags"))
            return
        self.add_custom_scalars({category: {title: ["Margin", list(tags)]}})

    # -- lifecycle ----------------------------------------------------------------------------------

    def flush(self) -> None:
        """Returns once everything written so far is on disk (or after 10 s)."""
        if not self._closed:
            self.run.flush(10.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.file_writer = self.all_writers = None
        if self._owns_run:
            self.run.finish()
        else:
            self.run.flush(10.0)

    def __del__(self) -> None:
        # Dropped without close(): end its own run in the background; exit waits for delivery.
        try:
            if not self._closed and self._owns_run:
                self._closed = True
                self.run._end_in_background("finished")
        except Exception:
            pass

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class GlobalSummaryWriter:
    """tensorboardX's ``GlobalSummaryWriter``: one writer shared by the processes a script forks,
    each tag's step counted across all of them (``add_scalar(tag, value)`` takes no step)."""

    _global: Optional["GlobalSummaryWriter"] = None

    def __init__(self, logdir: Optional[Any] = None, comment: str = "", purge_step: Optional[int] = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "", write_to_disk: bool = True,
                 log_dir: Optional[Any] = None, coalesce_process: bool = True, **kwargs: Any) -> None:
        import multiprocessing as mp

        self.smw: SummaryWriter = SummaryWriter(
            logdir=logdir, comment=comment, purge_step=purge_step, max_queue=max_queue, flush_secs=flush_secs,
            filename_suffix=filename_suffix, write_to_disk=write_to_disk, log_dir=log_dir, **kwargs)
        self.lock = mp.Lock()
        self._steps = mp.Manager().dict()  # (kind, tag) -> next step, shared with forked children

    def _next(self, kind: str, tag: str) -> int:
        with self.lock:
            key = kind + "\0" + str(tag)
            step = self._steps.get(key, 0)
            self._steps[key] = step + 1
            return step

    def add_scalar(self, tag: str, scalar_value: Any, walltime: Optional[float] = None) -> None:
        self.smw.add_scalar(tag, scalar_value, self._next("scalar", tag), walltime)

    def add_image(self, tag: str, img_tensor: Any, walltime: Optional[float] = None, dataformats: str = "CHW") -> None:
        self.smw.add_image(tag, img_tensor, self._next("image", tag), walltime, dataformats)

    def add_text(self, tag: str, text_string: str, walltime: Optional[float] = None) -> None:
        self.smw.add_text(tag, text_string, self._next("text", tag), walltime)

    def add_histogram(self, tag: str, values: Any, bins: Any = "tensorflow", walltime: Optional[float] = None,
                      max_bins: Optional[int] = None) -> None:
        self.smw.add_histogram(tag, values, self._next("histogram", tag), bins, walltime, max_bins)

    def add_audio(self, tag: str, snd_tensor: Any, sample_rate: int = 44100, walltime: Optional[float] = None) -> None:
        self.smw.add_audio(tag, snd_tensor, self._next("audio", tag), sample_rate, walltime)

    @staticmethod
    def getSummaryWriter() -> "GlobalSummaryWriter":
        if GlobalSummaryWriter._global is None or GlobalSummaryWriter._global.smw is None:
            GlobalSummaryWriter._global = GlobalSummaryWriter()
        return GlobalSummaryWriter._global

    @property
    def file_writer(self) -> Optional[_FileWriter]:
        return None if self.smw is None else self.smw.file_writer

    @property
    def run(self) -> Run:
        return self.smw.run

    def flush(self) -> None:
        self.smw.flush()

    def close(self) -> None:
        self.smw.flush()
        self.smw.close()

    def __enter__(self) -> "GlobalSummaryWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def _media():
    """The media helpers, imported on first use (they import numpy when it is installed; a
    script that only logs scalars never pays for that)."""
    from . import _media as m

    return m


def _number(value: Any) -> float:
    item = getattr(value, "item", None)  # a 0-d tensor or numpy scalar
    if callable(item):
        value = item()
    return float(value)


def _safe_tag(tag: Any) -> str:
    """A tag as a relative path: its ``/`` are kept as directories, empty and dot parts dropped."""
    parts = [p for p in str(tag).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"


def _names(logdir: Optional[Any], comment: str) -> "tuple[str, str]":
    if not logdir:
        return "runs", "tensorboard" + comment
    path = os.path.normpath(os.fspath(logdir))
    name = os.path.basename(path) or "tensorboard"
    parent = os.path.basename(os.path.dirname(path))
    return (parent or "tensorboard"), name + comment

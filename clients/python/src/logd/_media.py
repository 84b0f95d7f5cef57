"""Turning tensorboardX-style arguments (tensors, arrays, lists, figures) into files: PNG and
animated PNG images, WAV audio, histogram statistics and bins, PR curves, TSV tables.

Pure Python. numpy is used when installed (arrays convert faster and any array-like works);
without it, values may be numbers, nested lists or tuples, or anything with ``tolist()``.
matplotlib is needed only for ``add_figure`` (a figure is drawn by its own Agg canvas). Nothing
here is imported on the training loop's hot path.
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

try:  # optional
    import numpy as _np
except Exception:  # pragma: no cover - exercised when numpy is absent
    _np = None  # type: ignore[assignment]  # numpy is optional: every use tests ``_np`` first


# -- arrays without numpy ---------------------------------------------------------------------------

class Array:
    """A dense n-d array: ``shape`` and the values in row-major order (``flat``)."""

    __slots__ = ("shape", "flat")

    def __init__(self, shape: Tuple[int, ...], flat: List[float]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.flat = flat

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def to_array(value: Any) -> Array:
    """Any tensor, array, scalar or nested sequence as an ``Array`` of floats."""
    detach = getattr(value, "detach", None)  # a torch tensor: off the graph and the device
    if callable(detach):
        value = detach()
        cpu = getattr(value, "cpu", None)
        if callable(cpu):
            value = cpu()
    if _np is not None:
        a = _np.asarray(value, dtype=_np.float64)
        return Array(a.shape, a.ravel().tolist())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    shape: List[int] = []
    probe = value
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: List[float] = []

    def walk(v: Any, depth: int) -> None:
        if depth == len(shape):
            flat.append(float(v))
            return
        if not isinstance(v, (list, tuple)) or len(v) != shape[depth]:
            raise ValueError("ragged nested sequence: not an array")
        for item in v:
            walk(item, depth + 1)

    walk(value, 0)
    return Array(tuple(shape), flat)


def _transpose(a: Array, src: str, dst: str) -> Array:
    """Reorders the axes of ``a`` from layout ``src`` (e.g. ``"CHW"``) to ``dst``."""
    if src == dst:
        return a
    dims = dict(zip(src, a.shape))
    shape = tuple(dims[k] for k in dst)
    strides = {}
    step = 1
    for k, n in zip(reversed(src), reversed(a.shape)):
        strides[k] = step
        step *= n
    order = [strides[k] for k in dst]
    out: List[float] = []
    flat = a.flat

    def walk(depth: int, base: int) -> None:
        if depth == len(shape):
            out.append(flat[base])
            return
        s = order[depth]
        for i in range(shape[depth]):
            walk(depth + 1, base + i * s)

    walk(0, 0)
    return Array(shape, out)


# -- images ---------------------------------------------------------------------------------

class Image:
    """8-bit pixels, ``height`` rows of ``width * channels`` bytes (channels 1, 3 or 4)."""

    __slots__ = ("width", "height", "channels", "pixels")

    def __init__(self, width: int, height: int, channels: int, pixels: bytearray) -> None:
        self.width, self.height, self.channels, self.pixels = width, height, channels, pixels


def _scale_to_bytes(flat: Sequence[float], is_uint8: bool) -> bytearray:
    """tensorboardX's rule: floats are in [0, 1] and are scaled by 255; uint8 is kept."""
    k = 1.0 if is_uint8 else 255.0
    out = bytearray(len(flat))
    for i, v in enumerate(flat):
        x = v * k
        out[i] = 0 if not x > 0 else (255 if x >= 255 else int(x))
    return out


def _is_uint8(value: Any) -> bool:
    dtype = str(getattr(value, "dtype", ""))
    return dtype.endswith("uint8")


def image_from(value: Any, dataformats: str = "CHW") -> Image:
    """One image (``CHW``, ``HWC``, ``HW``) or a batch (``NCHW``, ``NHWC``), as tensorboardX's
    ``add_image`` / ``add_images`` take them; a batch becomes a grid of at most 8 columns."""
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or not set(fmt) <= set("NCHW"):
        raise ValueError("dataformats must be letters of NCHW, not %r" % (dataformats,))
    uint8 = _is_uint8(value)
    if _np is not None and not isinstance(value, Array):
        v = value
        detach = getattr(v, "detach", None)
        if callable(detach):
            v = detach().cpu().numpy()
        a = _np.asarray(v)
        if a.ndim != len(fmt):
            raise ValueError("%d-dimensional image for dataformats %r" % (a.ndim, dataformats))
        if "N" not in fmt:
            a, fmt = a[None], "N" + fmt
        if "C" not in fmt:
            a, fmt = a[..., None], fmt + "C"
        a = _np.transpose(a, [fmt.index(k) for k in "NHWC"])
        n, h, w, c = a.shape
        if c == 1:
            a = _np.repeat(a, 3, axis=3)
            c = 3
        if c not in (3, 4):
            raise ValueError("an image has 1, 3 or 4 channels, not %d" % c)
        cols = min(n, 8)
        rows = (n + cols - 1) // cols
        grid = _np.zeros((rows * h, cols * w, c), dtype=_np.float64)
        for i in range(n):
            r, q = divmod(i, cols)
            grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = a[i]
        if not uint8:
            grid = grid * 255.0
        grid = _np.nan_to_num(grid).clip(0, 255).astype(_np.uint8)
        return Image(cols * w, rows * h, c, bytearray(grid.tobytes()))
    arr = value if isinstance(value, Array) else to_array(value)
    if arr.ndim != len(fmt):
        raise ValueError("%d-dimensional image for dataformats %r" % (arr.ndim, dataformats))
    if "N" not in fmt:
        arr, fmt = Array((1,) + arr.shape, arr.flat), "N" + fmt
    if "C" not in fmt:
        arr, fmt = Array(arr.shape + (1,), arr.flat), fmt + "C"
    arr = _transpose(arr, fmt, "NHWC")
    n, h, w, c = arr.shape
    data = _scale_to_bytes(arr.flat, uint8)
    if c == 1:
        data = bytearray(b for b in data for _ in range(3))
        c = 3
    if c not in (3, 4):
        raise ValueError("an image has 1, 3 or 4 channels, not %d" % c)
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    W, H = cols * w, rows * h
    out = bytearray(W * H * c)
    row = w * c
    for i in range(n):
        r, q = divmod(i, cols)
        for y in range(h):
            src = (i * h + y) * row
            dst = ((r * h + y) * W + q * w) * c
            out[dst:dst + row] = data[src:src + row]
    return Image(W, H, c, out)


def draw_boxes(img: Image, boxes: Any) -> None:
    """Draws each box ``[x1, y1, x2, y2]`` (pixels) as a red 1-pixel outline."""
    b = to_array(boxes)
    if b.size() == 0:
        return
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError("boxes must be N x 4 ([x1, y1, x2, y2]), not %r" % (b.shape,))
    w, h, c, px = img.width, img.height, img.channels, img.pixels
    red = (255, 0, 0, 255)[:c]

    def put(x: int, y: int) -> None:
        if 0 <= x < w and 0 <= y < h:
            i = (y * w + x) * c
            px[i:i + c] = bytes(red)

    for k in range(b.shape[0]):
        x1, y1, x2, y2 = (int(round(v)) for v in b.flat[4 * k:4 * k + 4])
        for x in range(min(x1, x2), max(x1, x2) + 1):
            put(x, y1)
            put(x, y2)
        for y in range(min(y1, y2), max(y1, y2) + 1):
            put(x1, y)
            put(x2, y)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2, 4: 6}


def _png_header(img: Image) -> bytes:
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", img.width, img.height, 8, _COLOR_TYPE[img.channels], 0, 0, 0))


def _scanlines(img: Image) -> bytes:
    row = img.width * img.channels
    px = bytes(img.pixels)
    return b"".join(b"\x00" + px[y * row:(y + 1) * row] for y in range(img.height))


def png(img: Image) -> bytes:
    """The image as a PNG file (8-bit, no interlace)."""
    return (_PNG_SIGNATURE + _png_header(img) + _chunk(b"IDAT", zlib.compress(_scanlines(img), 6))
            + _chunk(b"IEND", b""))


def apng(frames: Sequence[Image], fps: float) -> bytes:
    """An animated PNG (plays in browsers; viewers without APNG show the first frame)."""
    first = frames[0]
    delay_num, delay_den = 1000, max(1, int(round(fps * 1000)))
    out = [_PNG_SIGNATURE, _png_header(first), _chunk(b"acTL", struct.pack(">II", len(frames), 0))]
    seq = 0
    for i, f in enumerate(frames):
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, f.width, f.height, 0, 0, delay_num,
                                               delay_den, 0, 0)))
        seq += 1
        data = zlib.compress(_scanlines(f), 6)
        if i == 0:
            out.append(_chunk(b"IDAT", data))
        else:
            out.append(_chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def video_frames(value: Any, dataformats: str = "NTCHW") -> List[Image]:
    """tensorboardX's video layout (``NTCHW``): one grid image of the N videos per time step."""
    fmt = dataformats.upper()
    if sorted(fmt) != sorted("NTCHW"):
        raise ValueError("dataformats must be a permutation of NTCHW, not %r" % (dataformats,))
    uint8 = _is_uint8(value)
    a = to_array(value)
    if a.ndim != 5:
        raise ValueError("a video is 5-dimensional (%s), not %r" % (fmt, a.shape))
    a = _transpose(a, fmt, "TNCHW")
    t, n, c, h, w = a.shape
    per = n * c * h * w
    frames = []
    for i in range(t):
        frame = Array((n, c, h, w), a.flat[i * per:(i + 1) * per])
        if uint8:
            frame = Array(frame.shape, [v / 255.0 for v in frame.flat])
        frames.append(image_from(frame, "NCHW"))
    return frames


def figure_image(figure: Any, close: bool = True) -> Image:
    """A matplotlib figure drawn with its Agg canvas, as tensorboardX's ``figure_to_image``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    w, h = canvas.get_width_height()
    rgba = bytes(canvas.buffer_rgba())
    rgb = bytearray(w * h * 3)
    rgb[0::3] = rgba[0::4]
    rgb[1::3] = rgba[1::4]
    rgb[2::3] = rgba[2::4]
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return Image(w, h, 3, rgb)


def grid(images: Sequence[Image]) -> Image:
    """Several images side by side, at most 8 per row (cells as large as the largest)."""
    w = max(i.width for i in images)
    h = max(i.height for i in images)
    c = 3
    cols = min(len(images), 8)
    rows = (len(images) + cols - 1) // cols
    W, H = cols * w, rows * h
    out = bytearray(W * H * c)
    for k, img in enumerate(images):
        r, q = divmod(k, cols)
        for y in range(img.height):
            src = img.pixels[y * img.width * img.channels:(y + 1) * img.width * img.channels]
            if img.channels == 4:
                src = bytearray(b for i, b in enumerate(src) if i % 4 != 3)
            dst = ((r * h + y) * W + q * w) * c
            out[dst:dst + img.width * c] = src
    return Image(W, H, c, out)


# -- audio ----------------------------------------------------------------------------------

def wav(value: Any, sample_rate: int) -> bytes:
    """Mono 16-bit PCM WAV of samples in [-1, 1] (clipped), as tensorboardX writes audio."""
    a = to_array(value)
    if a.ndim > 1 and a.size() != max(a.shape):
        raise ValueError("audio must be one channel (a 1-d array), not %r" % (a.shape,))
    frames = bytearray()
    for v in a.flat:
        x = -1.0 if v < -1.0 else (1.0 if v > 1.0 else (0.0 if v != v else v))
        frames += struct.pack("<h", int(x * 32767))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(bytes(frames))
    return buf.getvalue()


# -- histograms and curves ------------------------------------------------------------------

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def histogram(values: Any, bins: Any = "tensorflow", max_bins: Optional[int] = None) -> dict:
    """Summary statistics and bins of ``values``: ``min``, ``max``, ``num``, ``sum``,
    ``sum_squares``, ``mean``, ``std``, quantiles ``p5 p25 p50 p75 p95``, ``bucket_limits``
    (right edges) and ``bucket_counts``. ``bins``: ``"tensorflow"`` (30 equal-width bins, the
    default), a number of bins, a list of edges, or (with numpy) a numpy rule like ``"auto"``."""
    a = to_array(values)
    xs = sorted(v for v in a.flat if v == v and abs(v) != math.inf)
    if not xs:
        raise ValueError("a histogram needs at least one finite value")
    n = len(xs)
    lo, hi = xs[0], xs[-1]
    total = math.fsum(xs)
    squares = math.fsum(v * v for v in xs)
    mean = total / n
    var = max(0.0, squares / n - mean * mean)
    out: Dict[str, Any] = {"min": lo, "max": hi, "num": n, "sum": total, "sum_squares": squares, "mean": mean,
           "std": math.sqrt(var)}
    for q in QUANTILES:
        pos = q * (n - 1)
        i = int(pos)
        j = min(i + 1, n - 1)
        out["p%d" % round(q * 100)] = xs[i] + (xs[j] - xs[i]) * (pos - i)
    if isinstance(bins, str) and bins != "tensorflow":
        if _np is None:
            raise ValueError("bins=%r needs numpy; pass a number of bins or the edges" % (bins,))
        edges = [float(e) for e in _np.histogram_bin_edges(_np.asarray(xs), bins=bins)]
    elif isinstance(bins, (int, float)) or bins == "tensorflow":
        k = 30 if bins == "tensorflow" else max(1, int(bins))
        if max_bins:
            k = min(k, int(max_bins))
        width = (hi - lo) / k if hi > lo else 1.0
        edges = [lo + width * i for i in range(k)] + [hi if hi > lo else lo + 1.0]
    else:
        edges = [float(e) for e in to_array(bins).flat]
        if len(edges) < 2 or any(b <= a_ for a_, b in zip(edges, edges[1:])):
            raise ValueError("bin edges must be increasing, at least two")
    counts = [0] * (len(edges) - 1)
    import bisect

    last = len(counts) - 1
    for v in xs:
        if v < edges[0] or v > edges[-1]:
            continue
        i = bisect.bisect_right(edges, v) - 1
        counts[min(i, last)] += 1
    out["bucket_limits"] = edges[1:]
    out["bucket_counts"] = counts
    return out


def pr_curve(labels: Any, predictions: Any, num_thresholds: int = 127, weights: Any = None) -> dict:
    """Counts, precision and recall at ``num_thresholds`` thresholds evenly spaced in [0, 1],
    as tensorboardX's ``add_pr_curve`` computes them."""
    y = to_array(labels).flat
    p = to_array(predictions).flat
    if len(y) != len(p):
        raise ValueError("labels and predictions differ in length (%d, %d)" % (len(y), len(p)))
    wts = [1.0] * len(y) if weights is None else to_array(weights).flat
    num_thresholds = min(max(2, int(num_thresholds)), 127)
    tp_b = [0.0] * num_thresholds
    fp_b = [0.0] * num_thresholds
    for label, pred, wt in zip(y, p, wts):
        b = int(math.floor(min(max(pred, 0.0), 1.0) * (num_thresholds - 1)))
        if label:
            tp_b[b] += wt
        else:
            fp_b[b] += wt
    tp, fp = [0.0] * num_thresholds, [0.0] * num_thresholds
    acc_t = acc_f = 0.0
    for i in range(num_thresholds - 1, -1, -1):  # counts at or above each threshold
        acc_t += tp_b[i]
        acc_f += fp_b[i]
        tp[i], fp[i] = acc_t, acc_f
    tn = [fp[0] - v for v in fp]
    fn = [tp[0] - v for v in tp]
    precision = [t / max(1e-7, t + f) for t, f in zip(tp, fp)]
    recall = [t / max(1e-7, t + n_) for t, n_ in zip(tp, fn)]
    return {"thresholds": [i / (num_thresholds - 1) for i in range(num_thresholds)],
            "true_positives": tp, "false_positives": fp, "true_negatives": tn, "false_negatives": fn,
            "precision": precision, "recall": recall}


def tsv(rows: Sequence[Sequence[Any]], header: Optional[Sequence[Any]] = None) -> bytes:
    lines = []
    if header is not None:
        lines.append("\t".join(str(h) for h in header))
    for r in rows:
        lines.append("\t".join(str(v) for v in r))
    return ("\n".join(lines) + "\n").encode("utf-8")


def rows_of(value: Any) -> List[List[float]]:
    """A 2-d array as a list of rows."""
    a = to_array(value)
    if a.ndim != 2:
        raise ValueError("expected a 2-d matrix (points x dimensions), not %r" % (a.shape,))
    n, d = a.shape
    return [a.flat[i * d:(i + 1) * d] for i in range(n)]

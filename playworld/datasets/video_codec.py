"""``h264``: a compact lossy camera codec with random access, as a numcodecs + zarr v3 codec.

One zarr chunk holds ``CHUNK_FRAMES`` (16) consecutive frames of one camera, encoded as one
self-contained H.264 stream (libx264 through PyAV, raw Annex B bytes, yuv420p, ``crf`` = the
feature's ``level``, default 23, preset ``ultrafast``): the first frame is an IDR frame, so any
chunk decodes on its own, with any H.264 decoder (ffmpeg, browsers, hardware), no container.
Chunks sit in the store's usual shards (256 frames, 16 chunks a shard), so an hour is still
~870 files, and zarr reads a window with one read of the shard index and one of the chunks.

Chosen by measurement (bench/store.py's MuJoCo tabletop, two 480x640 cameras, fast arm motion:
a full cycle in 2 s; 2 contended cores, 2026-12-02), per frame:

    codec                               MB/min (2 cams, 30 Hz)  PSNR dB  encode CPU  decode
    H.264 crf 23 ultrafast, 16-frame GOP  ~16                   41.8     ~3.4 ms     ~2 ms
    H.264 crf 20 ultrafast, 16-frame GOP  ~21                   42.3     ~3.2 ms     ~2 ms
    H.264 crf 20 superfast, 16-frame GOP  ~19                   42.5     ~5 ms       ~3 ms
    H.264 crf 20 veryfast, 16-frame GOP   ~10                   41.8     ~8.6 ms     ~2 ms
    AV1 (SVT) crf 32 preset 12, 16 GOP    ~4.4                  40.0     ~12 ms      ~1.5 ms
    AVIF q80 speed 8, per frame           ~34                   46.8     ~27 ms      ~3 ms
    JPEG XL distance 1 effort 1           ~47                   47.1     ~9 ms       ~7 ms
    JPEG q90 (the ``jpeg`` codec)         ~74                   46.3     ~1 ms       ~1 ms

Per-frame codecs (AVIF, JPEG XL, JPEG) keep one frame per chunk but cannot reach the size target
(<= 32 MB/min at >= 38 dB) at a real-time encode cost; AV1 is smallest but costs more CPU per
frame (and its encoder logs to stderr), and fewer decoders read it. H.264 is 20x smaller than
lossless zstd at ~42 dB and is decoded everywhere. ``ultrafast`` at crf 23 rather than
``veryfast`` at crf 20: the same PSNR at 1.6x the size (half the 32 MB/min budget) for 2.5x less
encode CPU, which is what a recording at 30 Hz next to a control loop is short of (two cameras
cost ~7 ms of CPU a step instead of ~17).

Random access: `PlayStore.read` decodes the chunks a read touches straight from their shards
(video_shards.py), in parallel, each only up to the last row asked for, and converts to RGB only
the rows asked for: a random 16-step window decodes ~24 frames on average (a chunk up to its end,
then the next up to the window's end) and converts 16. Each pool thread keeps one decoder and one
colour converter (`_ThreadState`): per 480x640 frame ~0.4 ms to decode, ~0.2 ms to convert,
where a decoder made per chunk, and PyAV's default converter, made per frame with a pool of
swscale threads of its own, cost more than both.
Random windows of both cameras then read about as fast as lossless zstd (~3 ms a frame):
bench/store.py `lossy_windows_vs_lossless` ~1.0 (0.36 when every chunk went through zarr whole
with new decoders). Smaller groups cost size, larger ones decode time (same frames, veryfast
crf 20; CPU per decoded frame, measured before the reuse above):

    frames per chunk   MB/min   PSNR dB   decode     frames decoded per random 16-step window
    8                  10.4     41.8      1.8 ms     ~23
    16                  9.3     41.9      1.5 ms     ~31
    32                  8.6     41.9      2.2 ms     ~47

16 keeps windows within ~2x of the frames asked for at ~10% more size than 32; the bench's
arm moves fast (a full cycle in 2 s), slower play makes P frames, and so longer groups, cheaper.

Writes: a chunk is encoded whole, from the original frames. The store's writer (see
episode_buffer.py) always rewrites a chunk from its first row, with the raw frames it still
buffers, so an episode that ends mid-chunk is not decoded and re-encoded (generation loss) when
the next episode fills the chunk; only after a store is reopened for appending are the committed
frames of that one chunk read back decoded.

Other zarr readers: the array's metadata names the codec ``numcodecs.playworld_h264``; installing
playworld registers it through the ``numcodecs.codecs`` and ``zarr.codecs`` entry points (or
``import playworld.datasets.video_codec``), and PyAV decodes.
"""

from __future__ import annotations

import fractions
import threading
from collections.abc import Callable
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from playworld.errors import ConfigError

CODEC_ID = "playworld_h264"
CHUNK_FRAMES = 16
DEFAULT_CRF = 23
DEFAULT_PRESET = "ultrafast"


def _av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ConfigError("the h264 codec needs PyAV: pip install 'playworld[interop]'") from e
    return av


class H264(Codec):
    """numcodecs codec: ``(T, H, W, 3)`` uint8 frames <-> one H.264 stream (Annex B bytes).

    ``crf``: x264's constant rate factor (0-51, lower is better; 23 with ``ultrafast`` is ~42 dB
    on rendered scenes). ``preset``: x264's speed preset. H and W must be even (yuv420p).
    """

    codec_id = CODEC_ID

    def __init__(self, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET) -> None:
        if not 0 <= int(crf) <= 51:
            raise ConfigError(f"h264 crf must be in 0..51, got {crf}")
        self.crf = int(crf)
        self.preset = str(preset)

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "crf": self.crf, "preset": self.preset}

    def encode(self, buf: Any) -> bytes:
        frames = np.asarray(buf)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"h264 encodes uint8 (T, H, W, 3) frames, got {frames.dtype} {frames.shape}"
            )
        t, h, w, _ = frames.shape
        if h % 2 or w % 2:
            raise ValueError(f"h264 (yuv420p) needs even frame sizes, got {h}x{w}")
        av = _av()
        cc = av.CodecContext.create("libx264", "w")
        cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
        cc.time_base = fractions.Fraction(1, 30)
        cc.framerate = fractions.Fraction(30, 1)
        # One thread per encoder: zarr encodes several chunks at once, one per worker thread.
        cc.thread_count = 1
        # No extra IDR frames inside a chunk: the chunk's first frame is the only one needed.
        cc.options = {
            "crf": str(self.crf),
            "preset": self.preset,
            "x264-params": f"keyint={max(t, 1)}:min-keyint={max(t, 1)}:scenecut=0",
        }
        reformatter = _STATE.reformatter
        packets: list[bytes] = []
        for i in range(t):
            vf = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            # Converted here rather than by the encoder: its converter is new per chunk and
            # starts a pool of swscale threads each time (same pixels, see _ThreadState).
            vf = reformatter.reformat(vf, format="yuv420p", threads=1)
            vf.pts = i
            packets += [bytes(p) for p in cc.encode(vf)]
        packets += [bytes(p) for p in cc.encode(None)]
        return b"".join(packets)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        data = bytes(buf) if not isinstance(buf, bytes) else buf
        frames: list[np.ndarray] = []
        _decode(data, 0, None, lambda _, frame: frames.append(frame))
        if not frames:
            raise ValueError(f"h264 chunk of {len(data)} bytes decodes to no frame")
        result = np.stack(frames)
        if out is not None:
            out = np.asarray(out)
            out.reshape(-1)[:] = result.reshape(-1)  # raises if the sizes differ
            return out
        return result


class _ThreadState(threading.local):
    """Per thread: one H.264 decoder, reused from chunk to chunk, and one colour converter.

    Creating them per chunk cost more than decoding: PyAV gives every decoded frame a new
    swscale context whose default (``threads=0``) starts a pool of threads per frame, ~1 ms each
    on 2 cores, next to ~0.4 ms to decode a 480x640 frame. Chunks are decoded in parallel, one
    per pool thread (zarr's or shards.py's), so each converter and decoder runs on one thread.
    """

    def __init__(self) -> None:
        self._decoder: Any = None
        self._reformatter: Any = None

    @property
    def reformatter(self) -> Any:
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        return self._reformatter

    def decoder(self) -> Any:
        if self._decoder is None:
            self._decoder = _av().CodecContext.create("h264", "r")
            self._decoder.thread_count = 1
        return self._decoder

    def drop_decoder(self) -> None:
        self._decoder = None

    def flush(self) -> None:
        """Ready the decoder for the next chunk (an IDR frame, decoded as by a new decoder)."""
        if self._decoder is not None:
            self._decoder.flush_buffers()


_STATE = _ThreadState()


def _decode(
    data: bytes, first: int, stop: int | None, emit: Callable[[int, np.ndarray], object]
) -> int:
    """Decode one chunk, calling ``emit(i - first, frame)`` for frames ``first <= i < stop`` as
    ``(H, W, 3)`` uint8 arrays (over the converted frames' buffers); returns how many it emitted.

    Decoding stops after frame ``stop - 1``; frames before ``first`` are decoded (H.264 needs
    them) but not converted. ``stop=None``: all frames. A plain function, not a generator: the
    thread's decoder is flushed before it returns or raises, never later by a collector."""
    av = _av()
    state = _STATE
    cc = state.decoder()
    i = 0
    try:
        # Each chunk starts with an IDR frame (and its SPS/PPS), so a flushed decoder decodes it
        # as a new one would; parsing the whole chunk up front is cheap (~0.3 ms for 16 frames).
        for packet in [*cc.parse(data), *cc.parse(None), None]:
            for frame in cc.decode(packet):
                if i >= first:
                    rgb = state.reformatter.reformat(frame, format="rgb24", threads=1)
                    emit(i - first, rgb.to_ndarray())
                i += 1
                if stop is not None and i >= stop:
                    return i - first
    except av.error.FFmpegError as e:
        state.drop_decoder()  # its state after an error is not worth trusting
        raise ValueError(f"corrupt h264 chunk: {e}") from None
    finally:
        state.flush()
    return max(i - first, 0)


def decode_into(data: bytes, out: np.ndarray, first: int = 0) -> None:
    """Decode frames ``[first, first + len(out))`` of one chunk (``H264.encode``'s bytes) into
    ``out`` (``(n, H, W, 3)`` uint8), decoding no frame past the last one asked for.

    Raises ValueError for a chunk that does not decode or holds too few frames."""
    n = _decode(data, first, first + len(out), out.__setitem__)
    if n < len(out):
        raise ValueError(f"h264 chunk holds {first + n} frames, frame {first + len(out) - 1} asked")


numcodecs.register_codec(H264)

try:  # zarr v3: the numcodecs codec as an array-to-bytes codec (as zarr wraps its own)
    from zarr.codecs.numcodecs._codecs import _NumcodecsArrayBytesCodec
    from zarr.registry import register_codec as _register_zarr_codec

    class ZarrH264(_NumcodecsArrayBytesCodec, codec_name=CODEC_ID):
        """zarr v3 codec ``numcodecs.playworld_h264``: a chunk of frames as one H.264 stream."""

    _register_zarr_codec(f"numcodecs.{CODEC_ID}", ZarrH264)
except ImportError:  # pragma: no cover - zarr 2 readers use the numcodecs codec directly
    ZarrH264 = None  # type: ignore[assignment,misc]


def zarr_codec(crf: int | None = None) -> Any:
    """The zarr v3 serializer for an ``h264`` feature (``crf=None``: the default, 23)."""
    return ZarrH264(crf=DEFAULT_CRF if crf is None else int(crf), preset=DEFAULT_PRESET)

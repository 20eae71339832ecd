"""Video decoding for HuMoCon: which key frames to take, and reading only those from a file with OpenCV.

Split from `video_processing_humocon` (the processor: resizing, normalisation, flow) because how frames are found
and decoded is its own problem with its own measurements. Exported with checkpoints for `trust_remote_code=True`
beside the processor, so it only imports external libraries and same-folder modules.

Pipeline for one video (a file path or a uint8 ``(N, H, W, 3)`` RGB array):

1. Key frames. ``num_frames`` (K) frame indices at the centres of K equal segments of the clip,
   ``idx_k = floor((k + 0.5) * N / K)``. Clips shorter than K frames therefore repeat frames
   (the same frame appears at consecutive key positions); their timestamps stay the real ones, so
   they are non-decreasing rather than strictly increasing. With ``sampling_fps`` set, key frames
   are ``1 / sampling_fps`` seconds apart starting at the beginning of the clip (the same side the
   motion feature extractor keeps when it truncates), K stays ``num_frames`` because the encoder's
   token count and the ``<video>`` placeholder expansion depend on it; a clip shorter than the
   ``num_frames / sampling_fps`` window falls back to uniform sampling over the whole clip.
2. Decoding only what is needed (files). Two primitives: sequential ``grab()`` with ``retrieve()``
   (colour conversion, copy) only at key frames, and seeking with ``CAP_PROP_POS_FRAMES``. A seek
   decodes from the codec's previous key frame, so which one wins depends on the GOP length, which
   OpenCV does not expose. Measured (benchmarks/bench_video_preprocessing.py): on the real H.264
   clips (long GOPs, gaps of 7-27 frames) seeking 8 key frames is 3.7-4.8x slower than grabbing; on a
   60 s 1080p MPEG-4 clip (GOP 12, gaps of 187 frames) it is ~6x faster. ``decode_method="auto"``
   therefore decides per key frame from measured costs: it times grabbed frames (a few first
   when the first key frame is far), probes one seek when a gap is at least ``SEEK_PROBE_GAP``
   frames, and from then on seeks only where the measured seek cost is below the measured cost of
   grabbing the gap.
   Container frame counts can be wrong: grabbing runs to the end of the stream and re-samples with
   the true count when it differs (a second pass only for frames not yet retrieved); a seek is
   checked (the decoder must land on the requested frame), and when seeking was used the end is
   checked too (frame ``count - 1`` decodes, frame ``count`` does not); any failure falls back to
   grabbing.
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import re
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Sequence

import numpy as np

from .smpl22 import DEFAULT_FPS


class _LazyOpenCV:
    """OpenCV, imported at its first use: motion-only users (`humocon ask --motion`, an exported checkpoint) neither
    wait for it nor need it installed; without it the first video fails saying how to install it."""

    _module = None

    def __getattr__(self, name):
        if _LazyOpenCV._module is None:
            try:
                import cv2 as module
            except ImportError:
                raise ImportError(
                    "reading, resizing and optical flow of videos need OpenCV, which is not installed: "
                    "pip install opencv-python-headless"
                ) from None
            _LazyOpenCV._module = module
        return getattr(_LazyOpenCV._module, name)


cv2 = _LazyOpenCV()

# The standard library's logger, not transformers': the same logger (transformers' `get_logger` returns
# `logging.getLogger(name)`), without importing transformers (~1 s) for a module the command line's `--help` reads.
logger = logging.getLogger(__name__)

# The video files every entry point accepts (processor, `humocon ask`, data set loaders): what OpenCV/FFmpeg decodes.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".gif", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# "auto" decoding only tries a seek across gaps of at least this many frames: below it grabbing is
# cheap however short the GOP, and a probe on a long-GOP file would cost more than it could save.
SEEK_PROBE_GAP = 32
_CALIBRATION_FRAMES = 8


# --------------------------------------------------------------------------------------------
# Key-frame indices
# --------------------------------------------------------------------------------------------
def sample_frame_indices(
    total_frames: int, num_frames: int, fps: float = DEFAULT_FPS, sampling_fps: float | None = None
) -> np.ndarray:
    """Indices (K,) int64 of the key frames of a clip of ``total_frames`` frames at ``fps``.

    Uniform: the centre frame of each of K equal segments. With ``sampling_fps``: one frame every
    ``1 / sampling_fps`` s from the start (centre of each interval); uniform when the clip is shorter
    than that window. Non-decreasing; repeats frames when the clip has fewer than K frames.
    """
    if total_frames < 1:
        raise ValueError(f"cannot sample key frames from a clip with {total_frames} frames")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    k = np.arange(num_frames, dtype=np.float64) + 0.5
    if sampling_fps is not None and total_frames / fps >= num_frames / sampling_fps:
        idx = np.floor(k / sampling_fps * fps)
    else:
        idx = np.floor(k * total_frames / num_frames)
    return np.clip(idx, 0, total_frames - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
# Videos given by http(s) URL (as in transformers' chat messages, `{"type": "video", "url": ...}`) are downloaded once
# into a private per-user cache and decoded from there (`_fetch_url` says what is checked). Each default below can be
# changed by its environment variable, read at every download.
#: cache folder; None: ``<HF_HOME>/humocon/videos`` (``HUMOCON_VIDEO_CACHE``)
URL_CACHE_DIR: str | None = None
#: largest download in bytes (``HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES``)
MAX_DOWNLOAD_BYTES = 2 * 1024**3
#: seconds one download may take in all, connection, redirects and body included (``HUMOCON_VIDEO_DOWNLOAD_TIMEOUT``)
DOWNLOAD_TIMEOUT_S = 60.0
#: follow redirects to private / loopback / link-local addresses of another host (``HUMOCON_ALLOW_PRIVATE_REDIRECTS=1``)
ALLOW_PRIVATE_REDIRECTS = False
MAX_REDIRECTS = 5

# The containers a video may be in, told by its first bytes (never by a name): (name, extension of the cached file).
# FFmpeg only gets to use the matching demuxers (`_FFMPEG_CAPTURE_OPTIONS`): a playlist (HLS .m3u8), a concat list or
# an image pattern, which make FFmpeg open other files, is never read, whatever the file is called.
_CONTAINERS = {
    "mp4": ".mp4", "quicktime": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi", "mpeg-ts": ".ts",
    "mpeg-ps": ".mpg", "mpeg-video": ".m1v", "gif": ".gif",
}
_FFMPEG_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,mpegvideo,gif"
# Read by OpenCV's FFmpeg backend at every open: the file protocol only (no network, no concat:/subfile:/pipe: names)
# and the demuxers above only.
_FFMPEG_CAPTURE_OPTIONS = f"protocol_whitelist;file|format_whitelist;{_FFMPEG_FORMATS}"
_CAPTURE_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_capture_lock = threading.Lock()


def detect_container(head: bytes) -> str | None:
    """The video container of a file from its first bytes (at least 400 for MPEG-TS), or None when it is none of the
    accepted ones (`_CONTAINERS`)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "quicktime" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "quicktime"  # QuickTime files older than the ftyp box
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "matroska"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if head[:4] == b"\x00\x00\x01\xb3":
        return "mpeg-video"
    for packet, offset in ((188, 0), (192, 4)):  # MPEG-TS, and M2TS (a 4-byte time code before each packet)
        if len(head) >= offset + 2 * packet + 1 and all(head[offset + k * packet] == 0x47 for k in range(3)):
            return "mpeg-ts"
    return None


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None
    if not number > 0:
        raise ValueError(f"{name}={value!r} must be positive")
    return number


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


_SECRET_QUERY = re.compile(r"([?&][^=&#]*(?:token|sig|signature|key|password|passwd|secret|auth|credential)[^=&#]*=)"
                           r"[^&#]*", flags=re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` as it may be shown: without the ``user:password@`` part and the values of query parameters that look
    like secrets (token, signature, key, password, ...)."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return _SECRET_QUERY.sub(r"\1***", urllib.parse.urlunsplit(parts._replace(netloc=netloc)))


def video_cache_dir(create: bool = True) -> str:
    """The private folder URL downloads are cached in (`URL_CACHE_DIR`, else ``$HUMOCON_VIDEO_CACHE``, else
    ``<HF_HOME>/humocon/videos``), created with mode 0700. Refused (PermissionError) when another user owns it or
    others may write to it: a file someone else put there would be read as the download of a URL."""
    folder = URL_CACHE_DIR or os.environ.get("HUMOCON_VIDEO_CACHE")
    if not folder:
        from huggingface_hub import constants

        folder = os.path.join(constants.HF_HOME, "humocon", "videos")
    folder = os.path.abspath(os.path.expanduser(folder))
    if create:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    if not hasattr(os, "geteuid"):  # Windows: the user's profile folders are private already
        return folder
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"video download cache {folder} is not a folder")
    if st.st_uid != os.geteuid():
        raise PermissionError(f"video download cache {folder} belongs to another user (uid {st.st_uid}); set "
                              "HUMOCON_VIDEO_CACHE to a folder of your own")
    if st.st_mode & 0o022:
        raise PermissionError(f"video download cache {folder} is writable by other users (mode "
                              f"{stat.S_IMODE(st.st_mode):o}): its files cannot be trusted; remove it or make it "
                              "private (chmod 700)")
    if st.st_mode & 0o077:
        os.chmod(folder, 0o700)  # ours, only readable by others: make it private
    return folder


def _is_public(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Deadline:
    """Shuts the connection's socket down when the download's time is up, whatever it is waiting for (the TCP
    connection, a proxy's CONNECT, the TLS handshake, headers or body)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError(f"no complete answer within {self.seconds:g} s")
        return left

    def watch(self, sock: socket.socket) -> None:
        """Watch `sock` (by its descriptor, which a TLS wrapper keeps) until `cancel`."""
        self.cancel()
        with self._lock:
            self._fd = sock.fileno()
        self._timer = threading.Timer(max(0.0, self.end - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:  # never after cancel(): the descriptor may be closed and reused by then
            if self._fd is None:
                return
            self.expired = True
            shut = socket.socket(fileno=self._fd)
            try:
                shut.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                shut.detach()  # the descriptor stays the connection's to close

    def cancel(self) -> None:
        with self._lock:
            self._fd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _resolve(host: str, port: int) -> list[tuple]:
    return [info[4] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _proxy_for(parts):
    """The http:// proxy the environment names for this URL (``http_proxy`` / ``https_proxy``, not for ``no_proxy``
    hosts), as split URL, or None."""
    import urllib.parse
    import urllib.request

    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname):
        return None
    split = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if split.scheme != "http" or not split.hostname:
        raise ValueError(f"the {parts.scheme} proxy {redact_url(proxy)} is not an http:// proxy; only those are used")
    return split


def _basic_auth(parts) -> str | None:
    import base64
    import urllib.parse

    if parts.username is None:
        return None
    user, pw = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def _connect(parts, deadline: _Deadline, addresses: list[tuple] | None, proxy):
    """An open HTTP(S) connection for the URL `parts`: to one of `addresses` (checked by the caller: no second
    look-up), or through `proxy` (an http:// proxy; CONNECT for https)."""
    import ssl

    port = parts.port or (443 if parts.scheme == "https" else 80)
    if proxy is not None:
        host, conn_port = proxy.hostname, proxy.port or 80
    else:
        host, conn_port = parts.hostname, port
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, conn_port, timeout=30.0, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, conn_port, timeout=30.0)
    if proxy is not None and parts.scheme == "https":
        auth = _basic_auth(proxy)
        conn.set_tunnel(parts.hostname, port, headers={"Proxy-Authorization": auth} if auth else None)

    def create_connection(address, timeout=None, source_address=None):
        error: OSError | None = None
        for target in addresses if proxy is None else [address]:
            left = deadline.remaining()  # TimeoutError once the time is up
            try:
                sock = socket.create_connection(target[:2], timeout=min(left, 30.0))
            except OSError as err:  # this address does not answer: the next one
                error = err
                continue
            deadline.watch(sock)
            return sock
        raise error or OSError(f"no address for {host}")

    conn._create_connection = create_connection  # http.client's own hook for opening the socket
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    return conn


def _download(url: str, out, deadline: _Deadline, max_bytes: int, allow_private_redirects: bool) -> str:
    """Write the body of `url` (after redirects) into the open file `out`; returns the detected container."""
    import urllib.parse

    shown = redact_url(url)
    first = urllib.parse.urlsplit(url)
    first_private = False
    auth = _basic_auth(first)  # user:password@ in the URL: HTTP basic authentication, on this host only
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"video URL {shown}: redirected to {redact_url(current)}, not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        same_host = parts.hostname == first.hostname
        proxy = _proxy_for(parts)
        if proxy is None:
            addresses = _resolve(parts.hostname, port)
        else:  # the proxy resolves the name; a name only the proxy knows is not checked here
            try:
                addresses = _resolve(parts.hostname, port)
            except OSError:
                addresses = []
        private = [a[0] for a in addresses if not _is_public(a[0])]
        if hop == 0:
            first_private = bool(private)
        elif private and not allow_private_redirects and not (same_host and first_private):
            raise ValueError(
                f"video URL {shown}: redirected to {redact_url(current)}, a private, loopback or link-local address "
                f"({', '.join(private)}); set HUMOCON_ALLOW_PRIVATE_REDIRECTS=1 (or allow_private_redirects=True) "
                "to follow it"
            )
        conn = _connect(parts, deadline, addresses, proxy)
        try:
            netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
            if ":" in parts.hostname:  # IPv6 literal
                netloc = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            headers = {"Host": netloc, "User-Agent": "humocon-hf", "Accept-Encoding": "identity"}
            if auth and same_host:
                headers["Authorization"] = auth
            if proxy is not None and parts.scheme == "http":  # a plain proxy takes the whole URL
                path = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
                proxy_auth = _basic_auth(proxy)
                if proxy_auth:
                    headers["Proxy-Authorization"] = proxy_auth
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FileNotFoundError(f"HTTP {response.status} without a Location")
                current = urllib.parse.urljoin(current, location)
                continue
            if response.status != 200:
                raise FileNotFoundError(f"HTTP {response.status} {response.reason}")
            return _read_body(response, out, shown, max_bytes)
        finally:
            deadline.cancel()
            conn.close()
    raise ValueError(f"video URL {shown}: more than {MAX_REDIRECTS} redirects")


def _read_body(response, out, shown: str, max_bytes: int) -> str:
    lengths = response.msg.get_all("Content-Length") or []
    declared = None
    if lengths:
        if len({v.strip() for v in lengths}) != 1 or not lengths[0].strip().isdigit():
            raise ValueError(f"video URL {shown}: the server sent an invalid Content-Length "
                             f"{', '.join(repr(v) for v in lengths)} (not one whole number)")
        declared = int(lengths[0])
        if declared > max_bytes:
            raise ValueError(f"video URL {shown} is {declared} bytes, more than the {max_bytes} allowed "
                             "(HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES)")
    size, head, container = 0, b"", None
    while True:
        chunk = response.read1(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"video URL {shown} sent more than the {max_bytes} bytes allowed "
                             "(HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES)")
        out.write(chunk)
        if container is None and len(head) < 512:
            head += chunk[: 512 - len(head)]
            if len(head) == 512:
                container = _container_or_error(head, shown)
    if declared is not None and size != declared:
        raise ConnectionError(f"the download was cut: {size} of {declared} bytes")
    if size == 0:
        raise ValueError(f"video URL {shown}: the server sent no data")
    return container or _container_or_error(head, shown)


def _container_or_error(head: bytes, shown: str) -> str:
    container = detect_container(head)
    if container is None:
        kind = "a playlist (HLS m3u8)" if head.lstrip().startswith(b"#EXTM3U") else (
            "text / HTML" if head.lstrip()[:1] in (b"<", b"{", b"#") else "of an unknown kind")
        raise ValueError(f"video URL {shown} is not a video file: its content is {kind}, not one of the accepted "
                         f"containers ({', '.join(_CONTAINERS)})")
    return container


def _cached_copy(folder: str, key: str) -> str | None:
    for ext in dict.fromkeys(_CONTAINERS.values()):
        path = os.path.join(folder, key + ext)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0 and (not hasattr(os, "geteuid") or st.st_uid == os.geteuid()):
            with open(path, "rb") as fh:
                if _CONTAINERS.get(detect_container(fh.read(512)) or "") == ext:
                    return path
        os.remove(path)  # not what this cache writes: fetch again
    return None


def _fetch_url(
    url: str,
    *,
    timeout: float | None = None,
    max_bytes: int | None = None,
    allow_private_redirects: bool | None = None,
) -> str:
    """Local copy of a video URL, downloaded at most once per URL into `video_cache_dir()`.

    What is checked:

    - the content, not the name: the first bytes must be one of the accepted containers (MP4 / QuickTime, Matroska /
      WebM, AVI, MPEG-TS / PS, GIF); the cached file is named by the URL's hash and the *detected* container's
      extension (a URL ending in ``.m3u8`` serving a playlist is refused, one serving an MP4 is cached as ``.mp4``);
    - complete and decodable: the download goes to a temporary name and is kept only when it has the announced
      ``Content-Length`` (a non-numeric one is an error) and OpenCV decodes a frame of it; a cut or non-video
      download is not cached, so the next call asks the server again;
    - bounded: at most `max_bytes` (`MAX_DOWNLOAD_BYTES`) and `timeout` seconds in all (`DOWNLOAD_TIMEOUT_S`,
      connection, redirects and body together: a server trickling bytes cannot hold it longer);
    - redirects: the URL itself is the caller's choice (a server on localhost or the local network is fine), but a
      redirect to *another* host whose address is private, loopback, link-local or otherwise not public is refused
      unless `allow_private_redirects` (`HUMOCON_ALLOW_PRIVATE_REDIRECTS=1`); only http(s), at most 5 redirects;
    - ``user:password@`` in the URL is sent as HTTP basic authentication to that host only and never shown: messages
      and logs show `redact_url(url)`.

    An http:// proxy named by ``http_proxy`` / ``https_proxy`` (not for ``no_proxy`` hosts) is used as urllib would
    (CONNECT for https); a redirect target's address is then checked when this machine can resolve its name. Host
    name look-ups themselves are not under the deadline (the system resolver's own time-outs apply). Errors:
    FileNotFoundError when the URL cannot be downloaded (network, TLS, HTTP status, time limit, cut transfer),
    ValueError when what it serves is refused, PermissionError for an unsafe cache folder.
    """
    import hashlib

    timeout = float(timeout) if timeout is not None else _env_number("HUMOCON_VIDEO_DOWNLOAD_TIMEOUT",
                                                                     DOWNLOAD_TIMEOUT_S)
    max_bytes = int(max_bytes) if max_bytes is not None else int(
        _env_number("HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES", MAX_DOWNLOAD_BYTES))
    if allow_private_redirects is None:
        allow_private_redirects = _env_flag("HUMOCON_ALLOW_PRIVATE_REDIRECTS", ALLOW_PRIVATE_REDIRECTS)
    shown = redact_url(url)
    folder = video_cache_dir()
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    cached = _cached_copy(folder, key)
    if cached is not None:
        return cached
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{key}-", suffix=".part")  # mode 0600
    deadline = _Deadline(timeout)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                container = _download(url, out, deadline, max_bytes, bool(allow_private_redirects))
            if deadline.expired:
                raise TimeoutError("time is up")
        except (OSError, http.client.HTTPException, ValueError) as err:
            # unreachable host, HTTP error, time limit (whatever the cut-off answer looked like), cut transfer
            if deadline.expired:
                reason = f"no complete answer within {timeout:g} s; HUMOCON_VIDEO_DOWNLOAD_TIMEOUT sets the limit"
            elif isinstance(err, ValueError) and not isinstance(err, OSError):  # refused content (not a TLS error)
                raise
            else:
                reason = _redacted_error(err, url)
            raise FileNotFoundError(f"video URL could not be downloaded: {shown} ({reason})") from None
        candidate = partial[: -len(".part")] + _CONTAINERS[container]
        os.replace(partial, candidate)
        partial = candidate
        if not _decodes_a_frame(partial):
            raise ValueError(f"video URL {shown}: OpenCV/FFmpeg decodes no frame of it (a {container} file that is "
                             "damaged or in an unsupported codec)")
        target = os.path.join(folder, key + _CONTAINERS[container])
        os.replace(partial, target)
        return target
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _redacted_error(err: Exception, url: str) -> str:
    import urllib.parse

    text = str(err) or type(err).__name__
    parts = urllib.parse.urlsplit(url)
    for secret in (parts.password, parts.username, url):
        if secret:
            text = text.replace(secret, "***")
    return text


def _decodes_a_frame(path: str) -> bool:
    try:
        cap = _open_capture(path)
    except ValueError:
        return False
    try:
        return bool(cap.read()[0])
    finally:
        cap.release()


def _check_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if isinstance(path, str) and path.lower().startswith(("http://", "https://")):
        path = _fetch_url(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video file not found: {path}")
    if not os.path.isfile(path):
        raise ValueError(f"video path is not a file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"video file is empty (0 bytes): {path}")
    return path


def _open_capture(path: str) -> cv2.VideoCapture:
    """An FFmpeg capture of one local file: only the file protocol and the demuxers of the accepted containers (a
    playlist or concat list, whatever its name, is not opened; see `_FFMPEG_CAPTURE_OPTIONS`)."""
    with _capture_lock:  # OpenCV reads the options from the environment while it opens the file
        previous = os.environ.get(_CAPTURE_OPTIONS_ENV)
        os.environ[_CAPTURE_OPTIONS_ENV] = _FFMPEG_CAPTURE_OPTIONS
        try:
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        finally:
            if previous is None:
                os.environ.pop(_CAPTURE_OPTIONS_ENV, None)
            else:
                os.environ[_CAPTURE_OPTIONS_ENV] = previous
    if not cap.isOpened():
        cap.release()
        raise ValueError(
            f"cannot open video {path}: OpenCV/FFmpeg could not read it (corrupt, truncated or an "
            f"unsupported format; expected one of {', '.join(VIDEO_EXTENSIONS)})"
        )
    return cap


def _avi_states_no_rate(path: str) -> bool:
    """True for an AVI whose headers give no frame rate (video stream rate/scale 0 and no microseconds per frame):
    FFmpeg then silently assumes 25 fps, which OpenCV reports as if the file said so."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return False
    avih = head.find(b"avih")
    usec = struct.unpack("<I", head[avih + 8:avih + 12])[0] if 0 <= avih <= len(head) - 12 else 0
    start = 0
    while (strh := head.find(b"strh", start)) >= 0 and strh <= len(head) - 36:
        if head[strh + 8:strh + 12] == b"vids":
            scale, rate = struct.unpack("<II", head[strh + 28:strh + 36])
            return (scale == 0 or rate == 0) and usec == 0
        start = strh + 4
    return False


def _container_fps(cap: cv2.VideoCapture, path: str, fallback_fps: float) -> float:
    if _avi_states_no_rate(path):
        logger.warning(f"video {path}: its AVI headers give no frame rate (FFmpeg would assume 25 fps); timestamps "
                       f"assume {fallback_fps:g} fps")
        return float(fallback_fps)
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    # Below 1 fps is a broken header, not a video: an MP4 whose time scale is 0 reads as ~0.002 fps in FFmpeg.
    if not math.isfinite(fps) or fps < 1 or fps > 1000:
        logger.warning(f"video {path} reports no usable frame rate ({fps:g} fps, a broken container header?); "
                       f"timestamps assume {fallback_fps:g} fps")
        return float(fallback_fps)
    return fps


def _to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    if frame_bgr.ndim == 2:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
    if frame_bgr.shape[2] == 4:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def _no_frames_error(path: str) -> ValueError:
    return ValueError(f"video {path} has no decodable frames (empty or corrupt stream)")


def load_video(path: str | os.PathLike, fallback_fps: float = DEFAULT_FPS) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file.

    Returns ``(frames, fps)``: frames uint8 (N, H, W, 3) RGB and the container's frame rate
    (``fallback_fps`` when the container reports none). Use `load_key_frames` when only a few
    frames are needed: a long 1080p clip does not fit in memory decoded.
    """
    path = _check_path(path)
    cap = _open_capture(path)
    try:
        fps = _container_fps(cap, path, fallback_fps)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(_to_rgb(frame))
    finally:
        cap.release()
    if not frames:
        raise _no_frames_error(path)
    return np.stack(frames), fps


def _grab_frames(path: str, wanted: set, stop_after: int | None = None) -> tuple[dict, int]:
    """Sequential decode: retrieve only the ``wanted`` indices; returns (frames by index, frames decoded)."""
    cap = _open_capture(path)
    got: dict = {}
    i = 0
    try:
        while cap.grab():
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok:  # a frame that demuxes but does not decode ends the usable stream
                    break
                got[i] = _to_rgb(frame)
            i += 1
            if stop_after is not None and i > stop_after:
                break
    finally:
        cap.release()
    return got, i


def _seek_to(cap: cv2.VideoCapture, index: int) -> np.ndarray | None:
    """Seek and decode frame ``index``; ``None`` when the decoder does not land exactly there."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    if not ok or int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != index + 1:
        return None
    return frame


def _count_is_exact(cap: cv2.VideoCapture, reported: int) -> bool:
    """Frame ``reported - 1`` decodes and nothing decodes after it."""
    return _seek_to(cap, reported - 1) is not None and not cap.grab()


def _seek_frames(path: str, indices: Sequence[int], reported: int) -> dict | None:
    """Seek to every key frame; ``None`` when a seek misbehaves or the reported count is wrong."""
    cap = _open_capture(path)
    got: dict = {}
    try:
        for t in sorted(set(int(i) for i in indices)):
            frame = _seek_to(cap, t)
            if frame is None:
                return None
            got[t] = _to_rgb(frame)
        if not _count_is_exact(cap, reported):
            return None
    finally:
        cap.release()
    return got


def _adaptive_frames(path: str, indices: Sequence[int], reported: int) -> tuple[dict | None, int | None]:
    """Mix grabbing and seeking per key frame by measured cost.

    Returns ``(frames by index, frames in the stream)``, or ``(None, None)`` when a seek misbehaved
    (the caller then decodes sequentially).
    """
    cap = _open_capture(path)
    got: dict = {}
    pos = 0  # index of the frame the next grab() returns
    grab_cost: float | None = None  # seconds per grabbed frame
    seek_cost: float | None = None  # seconds per seek + read
    seeked = False
    try:
        for t in sorted(set(int(i) for i in indices)):
            if grab_cost is None and t - pos >= SEEK_PROBE_GAP + _CALIBRATION_FRAMES:
                # Far first key frame: time a few grabs so a seek can be tried right away. The first
                # frames decode slower (start-up), which errs towards probing a seek.
                t0 = time.perf_counter()
                for _ in range(_CALIBRATION_FRAMES):
                    if not cap.grab():
                        return got, pos
                    pos += 1
                grab_cost = (time.perf_counter() - t0) / _CALIBRATION_FRAMES
            gap = t - pos
            if (
                grab_cost is not None
                and gap >= SEEK_PROBE_GAP
                and (seek_cost is None or seek_cost < gap * grab_cost)
            ):
                t0 = time.perf_counter()
                frame = _seek_to(cap, t)
                if frame is None:
                    return None, None
                cost = time.perf_counter() - t0
                seek_cost = cost if seek_cost is None else 0.5 * (seek_cost + cost)
                seeked = True
                got[t] = _to_rgb(frame)
                pos = t + 1
                continue
            t0 = time.perf_counter()
            while pos < t:
                if not cap.grab():
                    return got, pos  # stream shorter than reported
                pos += 1
            if not cap.grab():
                return got, pos
            ok, frame = cap.retrieve()
            if not ok:
                return got, pos
            pos += 1
            got[t] = _to_rgb(frame)
            cost = (time.perf_counter() - t0) / (gap + 1)
            grab_cost = cost if grab_cost is None else 0.5 * (grab_cost + cost)
        # Verify the frame count: grab to the end when that is cheap, else probe the end by seeking.
        remaining = reported - pos
        if seeked and seek_cost is not None and grab_cost is not None and remaining * grab_cost > 2 * seek_cost:
            return (got, reported) if _count_is_exact(cap, reported) else (None, None)
        while cap.grab():
            pos += 1
        return got, pos
    finally:
        cap.release()


def load_key_frames(
    path: str | os.PathLike,
    num_frames: int = 8,
    sampling_fps: float | None = None,
    decode_method: str = "auto",
    fallback_fps: float = DEFAULT_FPS,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Decode only the key frames of a video file.

    Returns ``(frames, timestamps, fps, total_frames)``: frames uint8 (K, H, W, 3) RGB, timestamps
    float32 (K,) in seconds (``index / fps``), the container frame rate and the number of frames in
    the stream (verified, see the module docstring). ``decode_method``: ``"grab"`` (sequential),
    ``"seek"`` or ``"auto"`` (per key frame by measured cost). All three return the same frames.
    """
    if decode_method not in ("auto", "grab", "seek"):
        raise ValueError(f"decode_method must be 'auto', 'grab' or 'seek', got {decode_method!r}")
    path = _check_path(path)
    cap = _open_capture(path)
    try:
        fps = _container_fps(cap, path, fallback_fps)
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()

    def indices_for(n: int) -> np.ndarray:
        return sample_frame_indices(n, num_frames, fps, sampling_fps)

    got, total, indices = None, None, None
    if reported > 0:
        indices = indices_for(reported)
        if decode_method == "seek":
            got = _seek_frames(path, indices, reported)
            total = reported if got is not None else None
        elif decode_method == "auto":
            got, total = _adaptive_frames(path, indices, reported)
        if got is None:
            if decode_method != "grab":
                logger.info(f"seeking in {path} was unreliable; decoding sequentially instead")
            got, total = _grab_frames(path, set(int(i) for i in indices))
    else:  # unknown length: count first, then fetch
        got, total = {}, _grab_frames(path, set())[1]
    if total == 0:
        raise _no_frames_error(path)
    if indices is None or total != reported:
        if reported > 0:
            logger.warning(f"video {path} reports {reported} frames but {total} decode (a damaged or oddly muxed "
                           "file?); key frames are sampled from the decodable ones")
        indices = indices_for(total)
        missing = {int(i) for i in indices} - set(got)
        if missing:
            more, _ = _grab_frames(path, missing, stop_after=max(missing))
            got.update(more)
            if not missing <= set(got):
                raise ValueError(f"video {path} decodes differently on a second pass (corrupt stream)")
    if total < num_frames:
        logger.warning(f"video {path} has {total} decodable frame(s) for {num_frames} key frames: frames repeat")
    frames = np.stack([got[int(i)] for i in indices])
    return frames, (indices / fps).astype(np.float32), fps, total


__all__ = ["VIDEO_EXTENSIONS", "SEEK_PROBE_GAP", "detect_container", "load_key_frames", "load_video", "redact_url",
           "sample_frame_indices", "video_cache_dir"]

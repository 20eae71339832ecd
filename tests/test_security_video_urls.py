"""Video URLs and their download cache (issue 29, security): only real video containers are read, FFmpeg opens no
other file, the cache is private and keeps only complete, decodable downloads, every download is bounded in time and
size, redirects into private networks are refused, and credentials in a URL are never shown.

All servers are local (`http.server` on 127.0.0.1 in a thread): the machines have no internet."""

import base64
import functools
import http.server
import os
import stat
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import humocon_hf.processing.video_decoding as decoding
from humocon_hf.processing.video_decoding import detect_container, load_key_frames, redact_url

SECRET_USER, SECRET_PASSWORD = "alice", "s3cret-pw"


def _write_mp4(path: Path, seed: int = 0, n: int = 12) -> Path:
    frames = np.random.default_rng(seed).integers(0, 256, (n, 32, 48, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (48, 32))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("HUMOCON_VIDEO_CACHE", "HUMOCON_VIDEO_DOWNLOAD_TIMEOUT", "HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES",
                 "HUMOCON_ALLOW_PRIVATE_REDIRECTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(decoding, "URL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture()
def server(tmp_path):
    """A local server with one route per misbehaviour; `requests` counts the requests per path."""
    clip = _write_mp4(tmp_path / "clip.mp4").read_bytes()
    secret = _write_mp4(tmp_path / "secret.mp4", seed=9, n=3)
    playlist = (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret}\n#EXT-X-ENDLIST\n").encode()
    requests: list[str] = []
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, body: bytes, status=200, length=None, ctype="application/octet-stream", extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)) if length is None else length)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            requests.append(path)
            port = self.server.server_address[1]
            if path in ("/clip.mp4", "/clip.m3u8", "/clip"):
                self._send(clip)
            elif path == "/play.m3u8":
                self._send(playlist, ctype="application/vnd.apple.mpegurl")
            elif path == "/page.mp4":
                self._send(b"<html><body>" + b"not a video " * 100 + b"</body></html>", ctype="text/html")
            elif path == "/garbage.mp4":  # starts like an MP4 but holds no decodable stream
                self._send(clip[:32] + bytes(4000))
            elif path == "/cut.mp4":
                self.send_response(200)
                self.send_header("Content-Length", str(len(clip)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(clip[: len(clip) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif path == "/badlength.mp4":
                self._send(clip, length="12abc")
            elif path == "/stream.mp4":  # no Content-Length: read until the connection closes
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(clip)
                self.close_connection = True
            elif path in ("/trickle.mp4", "/trickle-headers.mp4"):
                if path == "/trickle.mp4":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(clip)))
                    self.end_headers()
                    data = clip
                else:  # the status line and headers themselves come one byte at a time
                    data = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 10_000
                for i in range(len(data)):
                    if stop.is_set():
                        return
                    try:
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.05)
            elif path == "/redirect-same":
                self._send(b"", status=302, extra=[("Location", "/clip.mp4")])
            elif path == "/redirect-localhost":
                self._send(b"", status=302, extra=[("Location", f"http://localhost:{port}/clip.mp4")])
            elif path == "/redirect-file":
                self._send(b"", status=302, extra=[("Location", f"file://{secret}")])
            elif path == "/auth.mp4":
                expected = "Basic " + base64.b64encode(f"{SECRET_USER}:{SECRET_PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") == expected:
                    self._send(clip)
                else:
                    self._send(b"", status=401)
            else:
                self._send(b"not found", status=404, ctype="text/plain")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", requests, tmp_path / "clip.mp4"
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


def _cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _cached_files(tmp_path) -> list[str]:
    folder = _cache(tmp_path)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ----------------------------------------------------------------------------- containers, not names


def test_a_playlist_url_is_refused_and_no_local_file_is_read(server, tmp_path):
    """A `.m3u8` URL made FFmpeg's HLS demuxer read the local files named in the playlist: the bytes decide now."""
    base, requests, _ = server
    with pytest.raises(ValueError, match=r"not a video file: its content is a playlist"):
        load_key_frames(f"{base}/play.m3u8", num_frames=2)
    assert _cached_files(tmp_path) == []


def test_the_cached_file_is_named_by_its_content_not_by_the_url(server, tmp_path):
    base, requests, clip = server
    frames, *_ = load_key_frames(f"{base}/clip.m3u8", num_frames=3)
    expected, *_ = load_key_frames(clip, num_frames=3)
    np.testing.assert_array_equal(frames, expected)
    (name,) = _cached_files(tmp_path)
    assert name.endswith(".mp4") and ".m3u8" not in name
    load_key_frames(f"{base}/clip", num_frames=3)  # no extension in the URL at all
    assert sorted(Path(n).suffix for n in _cached_files(tmp_path)) == [".mp4", ".mp4"]


def test_a_local_playlist_is_not_opened_whatever_its_name(tmp_path):
    """FFmpeg gets the demuxers of the accepted containers only: a playlist named .mp4 or .m3u8 on disk (an upload to
    the Space, say) reads no other file."""
    secret = _write_mp4(tmp_path / "secret.mp4")
    text = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret}\n#EXT-X-ENDLIST\n"
    for name in ("list.m3u8", "list.mp4"):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match="cannot open video"):
            load_key_frames(tmp_path / name, num_frames=2)
    concat = tmp_path / "concat.txt"
    concat.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    with pytest.raises((ValueError, FileNotFoundError)):
        load_key_frames(f"concat:{secret}", num_frames=2)
    assert os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS") is None  # set only while a file is opened


def test_detect_container():
    assert detect_container(b"\x00\x00\x00\x18ftypisom" + bytes(20)) == "mp4"
    assert detect_container(b"\x00\x00\x00\x14ftypqt  " + bytes(20)) == "quicktime"
    assert detect_container(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm") == "webm"
    assert detect_container(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska") == "matroska"
    assert detect_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert detect_container(b"GIF89a" + bytes(10)) == "gif"
    assert detect_container(b"\x00\x00\x01\xba" + bytes(10)) == "mpeg-ps"
    ts = bytearray(600)
    ts[0] = ts[188] = ts[376] = 0x47
    assert detect_container(bytes(ts)) == "mpeg-ts"
    for other in (b"#EXTM3U\n", b"<html>", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"ffconcat version 1.0", b"\x47" * 10,
                  b"\x89PNG\r\n\x1a\n"):
        assert detect_container(other) is None, other


# ----------------------------------------------------------------------------- what is kept


@pytest.mark.parametrize(("route", "error", "message"), [
    ("/cut.mp4", FileNotFoundError, r"could not be downloaded: .*/cut.mp4 \(the download was cut: \d+ of \d+ bytes"),
    ("/page.mp4", ValueError, r"not a video file: its content is text / HTML"),
    ("/garbage.mp4", ValueError, r"decodes no frame of it"),
    ("/badlength.mp4", ValueError, r"invalid Content-Length '12abc'"),
])
def test_a_cut_or_non_video_download_is_not_cached(server, tmp_path, route, error, message):
    base, requests, _ = server
    for attempt in (1, 2):
        with pytest.raises(error, match=message):
            load_key_frames(base + route, num_frames=2)
        assert requests.count(route) == attempt  # asked again: nothing was kept
    assert _cached_files(tmp_path) == []


def test_a_complete_download_without_content_length_is_kept(server, tmp_path):
    base, requests, _ = server
    for _ in range(2):
        load_key_frames(f"{base}/stream.mp4", num_frames=2)
    assert requests.count("/stream.mp4") == 1


def test_a_file_in_the_cache_that_this_cache_did_not_write_is_not_trusted(server, tmp_path):
    import hashlib

    base, requests, _ = server
    url = f"{base}/clip.mp4"
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    _cache(tmp_path).mkdir(mode=0o700)
    planted = _cache(tmp_path) / f"{key}.mp4"
    planted.write_text("#EXTM3U\n#EXTINF:10,\n/etc/passwd\n")
    load_key_frames(url, num_frames=2)
    assert requests.count("/clip.mp4") == 1 and detect_container(planted.read_bytes()[:512]) == "mp4"
    planted.unlink()
    planted.symlink_to(_write_mp4(tmp_path / "elsewhere.mp4", seed=5))  # a link is not a cached download either
    load_key_frames(url, num_frames=2)
    assert requests.count("/clip.mp4") == 2 and not planted.is_symlink()


# ----------------------------------------------------------------------------- the cache folder


def test_the_default_cache_is_private_and_per_user(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(decoding, "URL_CACHE_DIR", None)
    folder = decoding.video_cache_dir()
    assert folder == os.path.join(os.path.abspath(constants.HF_HOME), "humocon", "videos")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_an_unsafe_cache_folder_is_refused(server, tmp_path, monkeypatch):
    base, requests, _ = server
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # what tempfile.gettempdir()/humocon_video_downloads was for every user
    monkeypatch.setenv("HUMOCON_VIDEO_CACHE", str(shared))
    monkeypatch.setattr(decoding, "URL_CACHE_DIR", None)
    with pytest.raises(PermissionError, match="writable by other users"):
        load_key_frames(f"{base}/clip.mp4", num_frames=2)
    assert requests == []
    readable = tmp_path / "readable"
    readable.mkdir(mode=0o755)
    readable.chmod(0o755)
    monkeypatch.setenv("HUMOCON_VIDEO_CACHE", str(readable))
    load_key_frames(f"{base}/clip.mp4", num_frames=2)
    assert stat.S_IMODE(readable.stat().st_mode) == 0o700  # ours: made private
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root can give a folder to another user
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
        monkeypatch.setenv("HUMOCON_VIDEO_CACHE", str(other))
        with pytest.raises(PermissionError, match="belongs to another user"):
            load_key_frames(f"{base}/clip.mp4", num_frames=2)


# ----------------------------------------------------------------------------- time, size


@pytest.mark.parametrize("route", ["/trickle.mp4", "/trickle-headers.mp4"])
def test_a_trickling_server_cannot_hold_a_download_past_its_deadline(server, tmp_path, monkeypatch, route):
    base, requests, _ = server
    monkeypatch.setenv("HUMOCON_VIDEO_DOWNLOAD_TIMEOUT", "1.5")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match=r"no complete answer within 1.5 s"):
        load_key_frames(base + route, num_frames=2)
    assert time.monotonic() - start < 5
    assert _cached_files(tmp_path) == []


def test_downloads_are_capped_in_size(server, tmp_path, monkeypatch):
    base, requests, clip = server
    size = clip.stat().st_size
    with pytest.raises(ValueError, match=rf"is {size} bytes, more than the 1000 allowed"):
        decoding._fetch_url(f"{base}/clip.mp4", max_bytes=1000)
    monkeypatch.setenv("HUMOCON_MAX_VIDEO_DOWNLOAD_BYTES", "1000")
    with pytest.raises(ValueError, match="sent more than the 1000 bytes allowed"):
        load_key_frames(f"{base}/stream.mp4", num_frames=2)
    assert _cached_files(tmp_path) == []


# ----------------------------------------------------------------------------- redirects


def test_redirects_into_a_private_network_are_refused_unless_asked(server, tmp_path, monkeypatch):
    base, requests, clip = server
    load_key_frames(f"{base}/redirect-same", num_frames=2)  # the user's own (local) server, on its own host: fine
    with pytest.raises(ValueError, match=r"redirected to http://localhost:\d+/clip.mp4, a private, loopback or "
                                         r"link-local address .*HUMOCON_ALLOW_PRIVATE_REDIRECTS=1"):
        load_key_frames(f"{base}/redirect-localhost", num_frames=2)
    with pytest.raises(ValueError, match="not an http"):
        load_key_frames(f"{base}/redirect-file", num_frames=2)
    assert decoding._fetch_url(f"{base}/redirect-localhost", allow_private_redirects=True).endswith(".mp4")
    monkeypatch.setenv("HUMOCON_ALLOW_PRIVATE_REDIRECTS", "1")
    load_key_frames(f"{base}/redirect-localhost?again", num_frames=2)


def test_a_public_host_that_redirects_to_itself_at_a_private_address_is_refused(server, tmp_path, monkeypatch):
    """DNS rebinding: the URL's host looked public when it was asked for, its redirect target resolves to loopback."""
    base, requests, _ = server
    looked_up = []
    monkeypatch.setattr(decoding, "_is_public", lambda address: looked_up.append(address) or len(looked_up) == 1)
    with pytest.raises(ValueError, match="a private, loopback or link-local address"):
        load_key_frames(f"{base}/redirect-same", num_frames=2)
    assert requests == ["/redirect-same"]


# ----------------------------------------------------------------------------- credentials


def test_credentials_in_a_url_are_used_but_never_shown(server, tmp_path, caplog):
    base, requests, _ = server
    host = base.split("//", 1)[1]
    with caplog.at_level("DEBUG"):
        load_key_frames(f"http://{SECRET_USER}:{SECRET_PASSWORD}@{host}/auth.mp4", num_frames=2)
        with pytest.raises(FileNotFoundError) as missing:
            load_key_frames(f"http://{SECRET_USER}:{SECRET_PASSWORD}@{host}/missing.mp4?token=tok123", num_frames=2)
        with pytest.raises(ValueError) as refused:
            load_key_frames(f"http://{SECRET_USER}:{SECRET_PASSWORD}@{host}/page.mp4", num_frames=2)
    for text in (str(missing.value), str(refused.value), caplog.text):
        assert SECRET_PASSWORD not in text and "tok123" not in text
    assert f"http://***@{host}/missing.mp4?token=***" in str(missing.value)
    assert "HTTP 404" in str(missing.value)
    assert redact_url("https://u:p@h.example/v.mp4?X-Amz-Signature=abc&x=1") == \
        "https://***@h.example/v.mp4?X-Amz-Signature=***&x=1"


# ----------------------------------------------------------------------------- https


def _start(srv) -> None:
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def _https_server(tmp_path):
    """A local https file server with a self-signed certificate for 127.0.0.1; returns (server, cert file, folder)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    _write_mp4(served / "clip.mp4")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    _start(srv)
    return srv, cert, served


def test_https_urls_are_verified(tmp_path, monkeypatch):
    """TLS: the certificate must verify for the URL's host (here a self-signed one made trusted through SSL_CERT_FILE;
    without it the download is refused)."""
    srv, cert, served = _https_server(tmp_path)
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}/clip.mp4"
        with pytest.raises(FileNotFoundError, match="could not be downloaded.*CERTIFICATE_VERIFY_FAILED"):
            load_key_frames(url, num_frames=2)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        frames, *_ = load_key_frames(url, num_frames=2)
        np.testing.assert_array_equal(frames, load_key_frames(served / "clip.mp4", num_frames=2)[0])
    finally:
        srv.shutdown()
        srv.server_close()


def test_downloads_go_through_the_environments_http_proxy(server, tmp_path, monkeypatch):
    """http_proxy / https_proxy are honoured as urllib did (a plain GET of the whole URL, CONNECT for https), with
    the proxy's own user:password@ as Proxy-Authorization, and never shown."""
    import select
    import socket
    import urllib.request

    base, requests, clip = server
    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            seen.append(("GET", self.path, self.headers.get("Proxy-Authorization")))
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(self.path, timeout=10) as answer:
                    body, status = answer.read(), answer.status
            except urllib.error.HTTPError as err:
                body, status = b"", err.code
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_CONNECT(self):  # noqa: N802
            seen.append(("CONNECT", self.path, self.headers.get("Proxy-Authorization")))
            host, port = self.path.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.send_response(200, "Connection established")
            self.end_headers()
            conns = [self.connection, upstream]
            while True:
                ready, _, _ = select.select(conns, [], [], 10)
                if not ready:
                    break
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        upstream.close()
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    _start(proxy)
    https, cert, _ = _https_server(tmp_path)
    try:
        proxy_url = f"http://puser:ppass@127.0.0.1:{proxy.server_address[1]}"
        for name in ("http_proxy", "https_proxy"):
            monkeypatch.setenv(name, proxy_url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        expected = load_key_frames(clip, num_frames=2)[0]
        np.testing.assert_array_equal(load_key_frames(f"{base}/clip.mp4", num_frames=2)[0], expected)
        https_url = f"https://127.0.0.1:{https.server_address[1]}/clip.mp4"
        np.testing.assert_array_equal(load_key_frames(https_url, num_frames=2)[0], expected)
        auth = "Basic " + base64.b64encode(b"puser:ppass").decode()
        assert seen == [("GET", f"{base}/clip.mp4", auth), ("CONNECT", https_url.split("/")[2], auth)]
        with pytest.raises(FileNotFoundError) as missing:
            load_key_frames(f"{base}/missing.mp4", num_frames=2)
        assert "ppass" not in str(missing.value) and "HTTP 404" in str(missing.value)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        load_key_frames(f"{base}/stream.mp4", num_frames=2)
        assert len(seen) == 3  # no_proxy: straight to the server
    finally:
        proxy.shutdown()
        proxy.server_close()
        https.shutdown()
        https.server_close()

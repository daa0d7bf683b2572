"""Headless Chromium driven through the DevTools protocol, with the standard library only.

`load(path)` opens a local HTML file in a fresh headless Chromium, waits for its load event, and returns
what a person would see go wrong: uncaught exceptions, console errors, failed loads (the browser's own
log, e.g. an image that did not decode or a request that was blocked), plus the answer of a probe script
evaluated in the page and, optionally, a PNG screenshot of the whole page.

The DevTools protocol speaks JSON over a WebSocket; the few lines of RFC 6455 a client needs (a
handshake, masked text frames out, possibly fragmented frames in) are below, so the test needs nothing
that CI does not already have besides the browser (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """ROSETTA_CHROMIUM, else the first Chromium on PATH."""
    chosen = os.environ.get("ROSETTA_CHROMIUM")
    if chosen:
        return chosen if shutil.which(chosen) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@dataclass
class PageReport:
    errors: list = field(default_factory=list)  # human-readable: exceptions, console errors, error log entries
    probe: object = None  # what the probe expression returned
    screenshot: bytes | None = None


class WebSocket:
    """A minimal RFC 6455 client: text frames, fragmentation, ping / pong, close."""

    def __init__(self, url: str, timeout: float):
        assert url.startswith("ws://"), url
        host_port, _, path = url[len("ws://"):].partition("/")
        host, _, port = host_port.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the connection during the WebSocket handshake")
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head.decode(errors='replace')}")

    def send(self, text: str, opcode: int = 1) -> None:
        payload = text.encode() if isinstance(text, str) else text
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 2**16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 8:
                raise ConnectionError("the browser closed the WebSocket")
            if opcode == 9:
                self.send(payload, opcode=10)
                continue
            if opcode in (0, 1, 2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class DevTools:
    """Commands and events of one page target."""

    def __init__(self, url: str, timeout: float):
        self.ws = WebSocket(url, timeout)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"{method}: no answer in {self.timeout} s")

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for message in self.events:
                if message["method"] == event:
                    return message
            message = json.loads(self.ws.receive())
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no {event} in {self.timeout} s")

    def drain(self, seconds: float) -> None:
        """Collect events for a while (errors that arrive just after the load event)."""
        self.ws.sock.settimeout(0.2)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                try:
                    message = json.loads(self.ws.receive())
                except (socket.timeout, TimeoutError):
                    continue
                if "method" in message:
                    self.events.append(message)
        finally:
            self.ws.sock.settimeout(self.timeout)


def errors_in(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = (details.get("exception") or {}).get("description") or details.get("text")
            errors.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"browser log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return errors


def load(path: Path, probe: str = "null", width: int = 1400, height: int = 3000, screenshot: bool = False,
         timeout: float = 90, widths: tuple = ()) -> PageReport:
    """Open `path` in headless Chromium; return its errors, the probe's value and optionally a screenshot.

    With `widths`, the page is laid out again at each viewport width (CSS pixels, `height` high; below 600 px
    as a phone: the page's meta viewport applies) in the same browser, and `probe` and `screenshot` are
    {width: value} instead (the errors are those of the whole visit)."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="rosetta-chromium-") as profile:
        log = open(Path(profile) / "chromium.log", "wb")
        process = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                    f"--window-size={width},{height}", "about:blank"],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        tools = None
        try:
            port = _devtools_port(Path(profile), process, timeout)
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout).read())
            page = next(t for t in targets if t.get("type") == "page")
            tools = DevTools(page["webSocketDebuggerUrl"], timeout)
            for domain in ("Runtime", "Log", "Page"):
                tools.call(f"{domain}.enable")
            tools.events.clear()  # about:blank's own
            if widths:
                _viewport(tools, widths[0], height)
            tools.call("Page.navigate", url=Path(path).resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            tools.drain(1.0)
            if widths:
                report = PageReport(probe={}, screenshot={} if screenshot else None)
                for w in widths:
                    _viewport(tools, w, height)
                    tools.drain(0.2)  # the new layout, and whatever it loads
                    report.probe[w] = _evaluate(tools, probe)
                    if screenshot:
                        report.screenshot[w] = _screenshot(tools, w)
            else:
                report = PageReport(probe=_evaluate(tools, probe))
                if screenshot:
                    report.screenshot = _screenshot(tools, width)
            tools.drain(0.3)
            report.errors = errors_in(tools.events)
            return report
        finally:
            if tools is not None:
                try:
                    tools.call("Browser.close")
                except Exception:
                    pass
                tools.ws.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)  # its own session: the browser and its helpers only
                process.wait()
            log.close()


def _evaluate(tools: DevTools, expression: str):
    answer = tools.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in answer:
        raise RuntimeError(f"the probe failed: {answer['exceptionDetails']}")
    return answer.get("result", {}).get("value")


def _viewport(tools: DevTools, width: int, height: int) -> None:
    """Lay the page out at `width` CSS pixels; below 600 px as a phone (the meta viewport applies)."""
    tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
               mobile=width < 600)


def _screenshot(tools: DevTools, width: int) -> bytes:
    """The whole page at `width` (at most 20,000 px of its height)."""
    full = _evaluate(tools, "document.documentElement.scrollHeight")
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                      clip={"x": 0, "y": 0, "width": width, "height": min(full, 20000), "scale": 1})
    return base64.b64decode(shot["data"])


# The page's geometry as a reader meets it, at the current viewport: `wide`, the elements that reach past the
# viewport's edges and are not inside a box that scrolls or clips (so nothing is cut off and the page itself
# never scrolls sideways), `gaps`, the tallest vertical bands with nothing visible in them (content clipped by
# a scrolling box counts only where the box shows it), and the scroll boxes that do scroll sideways.
GEOMETRY = """(() => {
  const W = document.documentElement.clientWidth, H = window.innerHeight, Y = window.scrollY;
  const clips = el => { const s = getComputedStyle(el); return s.overflowX !== 'visible' || s.overflowY !== 'visible'; };
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const wide = [], spans = [], scrolling = [];
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || ['STYLE', 'SCRIPT'].includes(el.tagName)) continue;
    let r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let top = r.top, bottom = r.bottom, left = r.left, right = r.right, clipped = false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (!clips(p)) continue;
      const c = p.getBoundingClientRect();
      top = Math.max(top, c.top); bottom = Math.min(bottom, c.bottom);
      left = Math.max(left, c.left); right = Math.min(right, c.right); clipped = true;
    }
    if (!clipped && (r.right > W + 1 || r.left < -1)) wide.push(name(el) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    if (clips(el) && el.scrollWidth > el.clientWidth + 1) scrolling.push(name(el));
    const leaf = !el.firstElementChild || ['IMG', 'PRE', 'TD', 'TH', 'LI', 'P', 'DT', 'DD', 'SVG', 'INPUT', 'LABEL'].includes(el.tagName);
    if (leaf && bottom > top && right > left) spans.push([top + Y, bottom + Y]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const gaps = []; let reach = 0;
  for (const [a, b] of spans) { if (a - reach > 1) gaps.push([Math.round(reach), Math.round(a - reach)]); reach = Math.max(reach, b); }
  const height = document.documentElement.scrollHeight;
  if (height - reach > 1) gaps.push([Math.round(reach), Math.round(height - reach)]);
  gaps.sort((a, b) => b[1] - a[1]);
  return {width: W, screen: H, height, overflow: document.documentElement.scrollWidth - W,
          wide: wide.slice(0, 20), gaps: gaps.slice(0, 5), scrolling: [...new Set(scrolling)]};
})()"""


def _devtools_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """Chromium writes the port it chose (port 0) into DevToolsActivePort in its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            text = marker.read_text().split("\n")
            if text and text[0].strip().isdigit():
                return int(text[0])
        if process.poll() is not None:
            raise RuntimeError(f"Chromium exited with code {process.returncode}: "
                               + (profile / "chromium.log").read_text(errors="replace")[-1500:])
        time.sleep(0.1)
    raise TimeoutError(f"Chromium did not open its DevTools port in {timeout} s")

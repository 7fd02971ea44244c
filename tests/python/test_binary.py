"""Guards against a server binary that ignores an operator's zoo.cfg: invalid values must stop
the start with a message naming the key, unknown keys must warn, flags must win over the file,
and SIGTERM and SIGINT must shut it down cleanly."""

import os
import signal
import subprocess
import tempfile
import time

from kazoo.client import KazooClient

from conftest import ZKRS_BIN_DEFAULT, free_port, is_serving

BINARY = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)


def write_cfg(directory, text):
    path = os.path.join(directory, "zoo.cfg")
    with open(path, "w") as cfg:
        cfg.write(text)
    return path


def start(args, directory):
    return subprocess.Popen([BINARY, *args], cwd=directory, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_serving(port, process):
    deadline = time.monotonic() + 10
    while not is_serving(port):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the server never answered srvr"
        time.sleep(0.05)


def test_an_invalid_value_stops_the_start_and_names_its_key():
    with tempfile.TemporaryDirectory() as directory:
        cfg = write_cfg(directory, "tickTime=often\nclientPort=2181\n")
        result = subprocess.run([BINARY, "--config", cfg], cwd=directory, capture_output=True,
                                text=True, timeout=10)
        assert result.returncode != 0
        assert "tickTime" in result.stderr and "often" in result.stderr


def test_unknown_keys_warn_and_flags_win_over_the_file():
    with tempfile.TemporaryDirectory() as directory:
        file_port, flag_port = free_port(), free_port()
        cfg = write_cfg(directory, f"clientPort={file_port}\nfrobnicate=yes\n"
                                   "4lw.commands.whitelist=*\n")
        process = start(["--config", cfg, "--port", str(flag_port)], directory)
        try:
            wait_serving(flag_port, process)
            client = KazooClient(hosts=f"127.0.0.1:{flag_port}", timeout=5)
            client.start(timeout=5)
            client.create("/flag", b"ok")
            client.stop()
            client.close()
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert "unknown key frobnicate" in stderr


def test_sigint_shuts_down_cleanly():
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        process = start(["--port", str(port)], directory)
        try:
            wait_serving(port, process)
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert "shutting down" in stderr


def test_bad_flags_are_refused_with_usage():
    result = subprocess.run([BINARY, "--port", "seventy"], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode != 0
    assert "--port" in result.stderr and "usage:" in result.stderr

"""Guards against replies the Apache C client (libzookeeper_mt) misparses: runs tests/c/run.sh against each server."""

import os
import shutil
import subprocess

import pytest

RUN_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "c", "run.sh")
RUN_TIMEOUT_S = 120


@pytest.mark.parametrize("server", ["zk_server", "reference_server", "ensemble_server"])
def test_c_client_program(request, server):
    if shutil.which("gcc") is None or not os.path.exists("/usr/include/zookeeper/zookeeper.h"):
        pytest.fail("needs gcc and Debian's libzookeeper-mt-dev (scripts/test-all.sh installs it)")
    address = request.getfixturevalue(server)
    result = subprocess.run(["bash", RUN_SH, address], capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, (
        f"C client against {server} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    assert result.stdout.rstrip().endswith("PASS")

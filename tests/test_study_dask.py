"""Studies on Dask: a ``distributed.LocalCluster`` passed as a client, and a real scheduler and
worker started with the ``dask scheduler`` / ``dask worker`` commands, reached with
``mailsim sweep --scheduler``; both write the same results.csv rows as serial runs."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from study_helpers import comparable, fails_after_long_outages

import mailsim
from mailsim.cli import main
from mailsim.study import load_study, run_study

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.live  # real sockets, on 127.0.0.1 only

#: Seconds the scheduler and worker processes get to come up on a busy 2-core machine.
STARTUP = 60.0


@pytest.fixture(scope="module")
def local_client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,  # threads of this process, talking over TCP on 127.0.0.1
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``dask scheduler`` and one ``dask worker`` process on 127.0.0.1, stopped afterwards."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    dask = [sys.executable, "-m", "dask"]
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "scheduler.log", "wb"),  # noqa: SIM115  (closed with the process)
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [
                *dask,
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(logs / "worker.log", "wb"),  # noqa: SIM115
        )
        client = distributed.Client(address, timeout=STARTUP)
        try:
            client.wait_for_workers(1, timeout=STARTUP)
        finally:
            client.close()
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)
        time.sleep(0.1)


def test_a_local_cluster_client_gives_the_serial_rows(
    local_client: object, small: Path, serial_csv: str, tmp_path: Path
) -> None:
    report = run_study(load_study(small), client=local_client, out=tmp_path)
    assert not report.failed and len(report.rows) == 12
    assert comparable((tmp_path / "results.csv").read_text()) == comparable(serial_csv)


def test_the_python_api_uses_a_client_as_given(local_client: object) -> None:
    grid = {"faults[0].down_for": ["1h", "2h"]}
    options = {"fixed": {"duration": "6h"}, "replications": 2, "metrics": ["latency_mean"]}
    on_cluster = mailsim.sweep("link-outage", grid, client=local_client, **options)
    in_process = mailsim.sweep("link-outage", grid, workers=1, **options)
    columns = [c for c in on_cluster.columns if c != "wall_time"]
    assert on_cluster[columns].equals(in_process[columns])
    assert local_client.status == "running"  # type: ignore[attr-defined]  # not closed by sweep


def test_a_failing_combination_on_the_cluster_loses_no_other_run(local_client: object) -> None:
    frame = mailsim.sweep(
        "link-outage",
        grid={"faults[0].down_for": ["1h", "2h"]},
        fixed={"duration": "6h"},
        replications=2,
        metrics=["latency_mean", ("check", fails_after_long_outages)],
        client=local_client,
    )
    assert list(frame["status"]) == ["ok", "ok", "failed", "failed"]
    assert set(frame[frame["status"] == "failed"]["seed"]) == {1, 2}
    assert frame["error"].iloc[2] == "RuntimeError: deliberate failure after a long outage"


def test_mailsim_sweep_scheduler_writes_the_same_rows_as_serial_and_pool(
    scheduler_address: str, small: Path, serial_csv: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    cluster_out, pool_out = tmp_path / "cluster", tmp_path / "pool"
    result = runner.invoke(
        main,
        ["sweep", str(small), "--scheduler", scheduler_address, "--out", str(cluster_out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert "12 runs on the Dask cluster" in result.stdout
    result = runner.invoke(
        main,
        ["sweep", str(small), "--workers", "2", "--out", str(pool_out), "--no-figures"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    cluster_rows = comparable((cluster_out / "results.csv").read_text())
    assert cluster_rows == comparable(serial_csv)
    assert cluster_rows == comparable((pool_out / "results.csv").read_text())
    assert (cluster_out / "sweep.png").is_file()


def test_an_unreachable_scheduler_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailsim.study import report

    monkeypatch.setattr(report, "CONNECT_TIMEOUT", 2.0)
    result = CliRunner().invoke(
        main, ["sweep", "outage-study", "--scheduler", f"tcp://127.0.0.1:{_free_port()}"]
    )
    assert result.exit_code == 2
    assert "no Dask scheduler answers there" in result.stderr
    assert "Traceback" not in result.stderr

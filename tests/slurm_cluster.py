"""A real single-node SLURM cluster on this machine for the cluster test: munge, slurmctld, slurmd.

No systemd: the daemons are started by hand (toolchain.md §7) and every daemon started here is
stopped on exit. The configuration goes to /etc/slurm because the plugin's job steps drop
SLURM_CONF from the environment of the nested ``srun``. No accounting daemon: status comes from
``squeue`` (MinJobAge keeps finished jobs visible). The node advertises one GPU (a GRES backed by
/dev/null, ``SlurmdParameters=config_overrides``) so a ``--gpus=1`` request is accepted and
recorded, although this machine has none.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MARKER = "# scorelink test cluster"
CONF_DIR = Path("/etc/slurm")
MUNGE_PID = Path("/run/munge/munged.pid")


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the test cluster (not root, SLURM not installed, a real one configured)."""


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class SingleNodeSlurm:
    """Context manager: ``with SingleNodeSlurm(state_dir) as cluster: ...``; partition ``debug``."""

    def __init__(self, state_dir: Path, cpus: int = 16, memory_mb: int = 64000, gpus: int = 1):
        self.state = Path(state_dir)
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.host = socket.gethostname()
        self.pids: dict[str, int] = {}

    # -- set-up ---------------------------------------------------------------------------------
    def check(self) -> None:
        if os.geteuid() != 0:
            raise ClusterUnavailable("the test cluster needs root (daemons, /etc/slurm)")
        missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if not shutil.which(b)
                   and not Path("/usr/sbin", b).exists()]
        if missing:
            raise ClusterUnavailable(f"not installed: {missing} (./setup.sh installs slurm-wlm and munge)")
        conf = CONF_DIR / "slurm.conf"
        if conf.exists() and not conf.read_text().startswith(MARKER):
            raise ClusterUnavailable(f"{conf} exists and is not ours: not touching a configured SLURM")
        if _run("pgrep", "-x", "slurmctld").returncode == 0:
            raise ClusterUnavailable("a slurmctld is already running")

    def _write_config(self) -> None:
        for sub in ("ctld", "d", "log", "run"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        s = self.state
        conf = f"""{MARKER} (tests/slurm_cluster.py); removed when the test ends
ClusterName=scorelinktest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={s}/ctld
SlurmdSpoolDir={s}/d
SlurmctldPidFile={s}/run/slurmctld.pid
SlurmdPidFile={s}/run/slurmd.pid
SlurmctldLogFile={s}/log/slurmctld.log
SlurmdLogFile={s}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        (CONF_DIR / "slurm.conf").write_text(conf)
        (CONF_DIR / "gres.conf").write_text(f"{MARKER}\nNodeName={self.host} Name=gpu Count={self.gpus} File=/dev/null\n")

    def _start_munge(self) -> None:
        if _run("sh", "-c", "munge -n | unmunge").returncode == 0:
            return                                              # a munged is already serving: reuse it
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        res = _run("su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged")
        if res.returncode != 0:
            raise RuntimeError(f"munged failed to start: {res.stderr}")
        self.pids["munged"] = int(MUNGE_PID.read_text())

    def _wait_idle(self, timeout_s: float = 60) -> None:
        end = time.time() + timeout_s
        while time.time() < end:
            out = _run("sinfo", "-h", "-o", "%T").stdout.strip()
            if out == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node not idle after {timeout_s}s: {out!r}; see {self.state}/log")

    def __enter__(self) -> "SingleNodeSlurm":
        self.check()
        self._write_config()
        try:
            self._start_munge()
            for daemon, args in (("slurmctld", ["-i"]), ("slurmd", [])):
                res = _run(daemon, *args)
                if res.returncode != 0:
                    raise RuntimeError(f"{daemon} failed to start: {res.stderr}")
                pid_file = self.state / "run" / f"{daemon}.pid"
                for _ in range(50):
                    if pid_file.exists() and pid_file.read_text().strip():
                        break
                    time.sleep(0.1)
                self.pids[daemon] = int(pid_file.read_text())
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    # -- use ------------------------------------------------------------------------------------
    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld knows (finished ones for MinJobAge): id -> ``scontrol show job`` fields."""
        out = _run("scontrol", "show", "job", "-o").stdout
        jobs = {}
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    # -- tear-down ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every daemon started here (slurmd, slurmctld, then munged) and remove the config."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.get(name)
            if pid and _alive(pid):
                os.kill(pid, 15)
                for _ in range(100):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, 9)
        for name in ("slurm.conf", "gres.conf"):
            f = CONF_DIR / name
            if f.exists() and f.read_text().startswith(MARKER):
                f.unlink()

    def __exit__(self, *exc) -> None:
        self.stop()

    def running(self) -> list[str]:
        """Names of the daemons started here that are still alive (empty after ``stop``)."""
        return [name for name, pid in self.pids.items() if _alive(pid)]

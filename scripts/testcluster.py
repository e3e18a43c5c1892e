#!/usr/bin/env python3
"""A test cluster on one machine: N "hosts" as Linux network namespaces (each with its own
hostname, IP address and veth link to a bridge, every link shaped by tc), MPICH's hydra
placing ranks on them, and optionally Slurm (one slurmctld, one slurmd per host, munge).

    sudo scripts/testcluster.py up [--hosts 4] [--rate 1gbit] [--delay 0] [--slurm]
    sudo scripts/testcluster.py mpiexec -n 4 aibench run --suite interconnect   # hydra, one rank per host
    sudo scripts/testcluster.py srun -N 4 aibench run --fleet --suite gemm       # Slurm
    sudo scripts/testcluster.py exec abnode1 -- ip addr                          # a shell "on" a host
    sudo scripts/testcluster.py shape abnode2 --rate 250mbit                     # one host's link slower
    sudo scripts/testcluster.py slow-pair abnode1 abnode2 --rate 250mbit         # one slow path between two
    sudo scripts/testcluster.py down                                             # nothing left behind

Layout (docs/testcluster.md): host i is namespace `abnode<i>` with hostname `abnode<i>`,
address 10.231.0.<11+i>/24 on its eth0; the other end of its veth (`abv<i>`) is on the
bridge `abbr0` (10.231.0.1) in the root namespace. Each link is shaped in both directions
(netem on eth0 for what the host sends, on abv<i> for what it receives), so a transfer
from host a to host b crosses two shaped links: its rate is the slower of the two and its
one-way delay is the sum of their delays. Ranks on different hosts never share memory as
far as MPI knows (hydra gives each host its own proxy; the hostnames differ), so they talk
TCP over those links. Host names are added to /etc/hosts in a marked block.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2; Slurm needs Debian's slurm-wlm
and munge. Stdlib only: tests import it (tests/cluster.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PREFIX = "abnode"
BRIDGE = "abbr0"
SUBNET = "10.231.0"
BRIDGE_IP = f"{SUBNET}.1"
CONTROLLER = "abctl"  # Slurm's controller: the root network namespace, under this hostname
STATE = Path("/run/aibench-testcluster")
HOSTS_BEGIN = "# aibench testcluster begin"
HOSTS_END = "# aibench testcluster end"
ETC_HOSTS = Path("/etc/hosts")


def host_name(i: int) -> str:
    return f"{PREFIX}{i}"


def host_ip(i: int) -> str:
    return f"{SUBNET}.{11 + i}"


def _run(*cmd: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {(out.stderr or out.stdout).strip()}")
    return out


def unavailable_reason() -> str | None:
    """Why a test cluster cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "the test cluster needs root (network namespaces, veth, tc)"
    for tool in ("ip", "tc", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 util-linux)"
    probe = f"{PREFIX}probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


def hosts() -> list[str]:
    """The hosts of the cluster that is up, in order."""
    out = _run("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX) and line.split()[0][len(PREFIX):].isdigit()]
    return sorted(names, key=lambda n: int(n[len(PREFIX):]))


def index_of(host: str) -> int:
    if not host.startswith(PREFIX) or not host[len(PREFIX):].isdigit():
        raise SystemExit(f"testcluster: {host!r} is not a host of the test cluster ({PREFIX}0, {PREFIX}1, ...)")
    return int(host[len(PREFIX):])


def uts_file(host: str) -> Path:
    return STATE / "uts" / host


def enter(host: str) -> list[str]:
    """The command prefix that runs a program on `host`: its network and UTS namespaces."""
    return ["nsenter", f"--net=/run/netns/{host}", f"--uts={uts_file(host)}"]


def shape(i: int, rate: str, delay: str, loss: str) -> None:
    """Shape host i's link, both directions: netem (rate, delay, loss) where the kernel has
    it, else tbf for the rate (delay and loss refused: netem is the only qdisc that adds
    them, and without it a test that needs them must skip)."""
    host = host_name(i)
    if netem_available():
        qdisc = ["netem", "rate", rate, "delay", delay, "limit", "100000"] + ([] if _zero(loss) else ["loss", loss])
    else:
        if not (_zero(delay) and _zero(loss)):
            raise SystemExit(f"testcluster: this kernel has no netem qdisc (sch_netem), so links can have a rate "
                             f"but no delay or loss (asked: delay {delay}, loss {loss}); use --delay 0 --loss 0")
        # burst: at least one 64 KiB GSO packet and 1 ms at the rate; queue: 50 ms at the rate.
        qdisc = ["tbf", "rate", rate, "burst", "256kb", "latency", "50ms"]
    _run("ip", "netns", "exec", host, "tc", "qdisc", "replace", "dev", "eth0", "root", *qdisc)
    _run("tc", "qdisc", "replace", "dev", f"abv{i}", "root", *qdisc)
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / f"shape-{host}").write_text(f"{' '.join(qdisc[:1])} rate {rate} delay {delay} loss {loss}\n")


def slow_pair(a: int, b: int, rate: str) -> None:
    """Make the path between hosts a and b alone slower (`rate`, each way), as one bad cable
    or port between them would be, leaving both hosts' other traffic at their link rate.
    On each of the two hosts, HTB replaces the link's qdisc (class 1:10 at the link rate
    for everything, class 1:20 at `rate` for the other host) and an nftables rule puts
    packets to the other host in 1:20 (HTB takes a class id from skb->priority, so no tc
    classifier is needed)."""
    link_rate = _shaped_rate(host_name(a))
    for me, other in ((a, b), (b, a)):
        host = host_name(me)
        inside = ["ip", "netns", "exec", host]
        _run(*inside, "tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10")
        _run(*inside, "tc", "class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb",
             "rate", link_rate, "burst", "256kb")
        _run(*inside, "tc", "class", "replace", "dev", "eth0", "parent", "1:1", "classid", "1:10", "htb",
             "rate", link_rate, "burst", "256kb")
        _run(*inside, "tc", "class", "replace", "dev", "eth0", "parent", "1:1", "classid", "1:20", "htb",
             "rate", rate, "ceil", rate, "burst", "64kb")
        rules = (f"table ip aibench_testcluster {{\n chain out {{\n  type filter hook postrouting priority 0;\n"
                 f"  ip daddr {host_ip(other)} meta priority set 1:20\n }}\n}}\n")
        done = subprocess.run([*inside, "nft", "-f", "-"], input=rules, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nft on {host}: {done.stderr.strip()}")
    (STATE / f"pair-{host_name(a)}-{host_name(b)}").write_text(f"{rate}\n")


def _shaped_rate(host: str) -> str:
    shaped = STATE / f"shape-{host}"
    words = shaped.read_text().split() if shaped.exists() else []
    return words[words.index("rate") + 1] if "rate" in words else "10gbit"


def _zero(value: str) -> bool:
    return value.rstrip("%msu").replace(".", "").strip("0") == ""


def netem_available() -> bool:
    """Whether tc can add netem (delay, loss) here: tried once on a probe namespace's loopback."""
    probe = f"{PREFIX}probe"
    _run("ip", "netns", "add", probe, check=False)
    try:
        return _run("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                    check=False).returncode == 0
    finally:
        _run("ip", "netns", "del", probe, check=False)


def _write_etc_hosts(n: int | None) -> None:
    """Our block in /etc/hosts: the hosts (and Slurm's controller) by name; n=None removes it."""
    text = ETC_HOSTS.read_text() if ETC_HOSTS.exists() else ""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == HOSTS_BEGIN:
            inside = True
        elif line.strip() == HOSTS_END:
            inside = False
        elif not inside:
            lines.append(line)
    if n is not None:
        lines += [HOSTS_BEGIN, f"{BRIDGE_IP} {CONTROLLER}", *(f"{host_ip(i)} {host_name(i)}" for i in range(n)), HOSTS_END]
    ETC_HOSTS.write_text("\n".join(lines) + "\n")


def up(n: int, rate: str, delay: str, loss: str, slurm: bool) -> None:
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"testcluster: {reason}")
    if hosts():
        down()
    if not 1 <= n <= 200:
        raise SystemExit(f"testcluster: --hosts must be between 1 and 200 (got {n})")
    (STATE / "uts").mkdir(parents=True, exist_ok=True)
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    for i in range(n):
        host = host_name(i)
        _run("ip", "netns", "add", host)
        _run("ip", "link", "add", f"abv{i}", "type", "veth", "peer", "name", "eth0", "netns", host)
        _run("ip", "link", "set", f"abv{i}", "master", BRIDGE, "up")
        inside = ["ip", "netns", "exec", host]
        _run(*inside, "ip", "addr", "add", f"{host_ip(i)}/24", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "route", "add", "default", "via", BRIDGE_IP)
        # A UTS namespace of its own, kept by a bind mount, so `hostname` says which host.
        uts = uts_file(host)
        uts.touch()
        _run("unshare", f"--uts={uts}", "hostname", host)
        shape(i, rate, delay, loss)
    _write_etc_hosts(n)
    if slurm:
        from_slurm_up(n)
    print(f"testcluster: {n} hosts up ({', '.join(host_name(i) for i in range(n))}), links {rate}, "
          f"delay {delay}{', loss ' + loss if loss not in ('0', '0%') else ''}"
          f"{'; Slurm up (export SLURM_CONF=' + str(slurm_conf()) + ')' if slurm else ''}")


def _kill_all_in(host: str) -> None:
    pids = _run("ip", "netns", "pids", host, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def down() -> None:
    """Remove everything `up` made, whatever state it is in: processes in the namespaces,
    the Slurm daemons, namespaces, veths, the bridge, the /etc/hosts block."""
    slurm_down()
    for host in hosts():
        _kill_all_in(host)
    for host in hosts():
        _run("ip", "netns", "del", host, check=False)
        uts = uts_file(host)
        _run("umount", str(uts), check=False)
        uts.unlink(missing_ok=True)
    for link in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = link.split(":")[1].strip().split("@")[0] if ":" in link else ""
        if name.startswith("abv") and name[3:].isdigit():
            _run("ip", "link", "del", name, check=False)
    _run("ip", "link", "del", BRIDGE, check=False)
    _write_etc_hosts(None)
    for f in [*STATE.glob("shape-*"), *STATE.glob("env-*"), *STATE.glob("pair-*")]:
        f.unlink()


def status() -> int:
    names = hosts()
    if not names:
        print("testcluster: down")
        return 1
    for host in names:
        shaped = (STATE / f"shape-{host}")
        pids = _run("ip", "netns", "pids", host, check=False).stdout.split()
        print(f"{host} {host_ip(index_of(host))} {shaped.read_text().strip() if shaped.exists() else 'unshaped'}; "
              f"{len(pids)} process(es)")
    if (STATE / "slurm" / "slurmctld.pid").exists():
        print(f"Slurm: SLURM_CONF={slurm_conf()}")
    return 0


# --- hydra ------------------------------------------------------------------------------

def ssh(argv: list[str]) -> int:
    """What hydra's ssh launcher runs (`-launcher ssh -launcher-exec scripts/testcluster-ssh`):
    `[ssh options] HOST COMMAND...`; runs COMMAND on HOST through a shell, as sshd would."""
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-p", "-l", "-o", "-i", "-F") and args:  # ssh options that take a value
            args.pop(0)
    if len(args) < 2:
        print("testcluster ssh: usage: testcluster-ssh [ssh options] HOST COMMAND...", file=sys.stderr)
        return 255
    host, command = args[0].split("@")[-1], " ".join(args[1:])
    index_of(host)
    os.execvp("nsenter", [*enter(host), "env", *host_env(host), "sh", "-c", command])
    return 255  # not reached


# UCX (MPICH's netmod in the mpich wheel) judges two processes to be on one machine by the
# kernel's identity, not the hostname, so without this it would move data between the
# "hosts" through shared memory and never touch the shaped links. TCP (and self for a
# rank's own messages) is what ranks on different real hosts would use; ranks that share
# a host here talk TCP over loopback.
UCX_TLS = "tcp,self"


def host_env(host: str) -> list[str]:
    """The KEY=VALUE settings given to one host (`testcluster.py env HOST K=V ...`): what
    its login environment adds to every process started there, as a drifted
    /etc/profile.d would on a real node."""
    path = STATE / f"env-{host}"
    return path.read_text().split() if path.exists() else []


def find_mpiexec() -> str:
    """The mpiexec aibench would use (the mpich wheel's, next to this Python), else PATH's."""
    beside = Path(sys.executable).parent / "mpiexec"
    return os.environ.get("AIBENCH_MPIEXEC") or (str(beside) if beside.exists() else shutil.which("mpiexec") or "mpiexec")


def mpiexec_command(argv: list[str], mpiexec: str | None = None) -> list[str]:
    """hydra's mpiexec across the cluster: started on host 0, proxies on the others through
    testcluster-ssh, ranks placed round-robin one per host (unless argv says otherwise)."""
    names = hosts()
    if not names:
        raise SystemExit("testcluster: the cluster is down (scripts/testcluster.py up)")
    mpiexec = mpiexec or find_mpiexec()
    shim = Path(__file__).with_name("testcluster-ssh")
    placement = [] if any(a in ("-hosts", "-host", "-f", "-hostfile", "-machinefile") for a in argv) else ["-hosts", ",".join(names)]
    return [*enter(names[0]), mpiexec, "-launcher", "ssh", "-launcher-exec", str(shim),
            "-genv", "UCX_TLS", UCX_TLS, *placement, *argv]


# --- Slurm ------------------------------------------------------------------------------

def slurm_conf() -> Path:
    return STATE / "slurm" / "slurm.conf"


def _slurm_conf_text(n: int) -> str:
    d = STATE / "slurm"
    cpus = os.cpu_count() or 1
    nodes = "\n".join(f"NodeName={host_name(i)} NodeAddr={host_ip(i)} CPUs={cpus} RealMemory=1000 State=UNKNOWN"
                      for i in range(n))
    return f"""# written by scripts/testcluster.py: one slurmd per network-namespace host
ClusterName=aibtest
SlurmctldHost={CONTROLLER}({BRIDGE_IP})
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmi2
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
{nodes}
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
"""


MUNGE_SOCKET = Path("/run/munge/munge.socket.2")


def _munge_works() -> bool:
    return MUNGE_SOCKET.exists() and subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0


def _munge_up() -> None:
    """munged for Slurm's authentication: the one running, else one started here (and
    stopped by `down`). Its socket is a path, so every namespace-host reaches it."""
    if _munge_works():
        return
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        _run("mungekey", "--create", "--keyfile", str(key))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
    MUNGE_SOCKET.parent.mkdir(exist_ok=True)
    shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
    _run("runuser", "-u", "munge", "--", "munged", "--force")
    (STATE / "slurm" / "munged-started").touch()
    deadline = time.monotonic() + 10
    while not _munge_works():
        if time.monotonic() > deadline:
            raise SystemExit("testcluster: munged did not answer within 10 s")
        time.sleep(0.1)


def from_slurm_up(n: int) -> None:
    for tool in ("slurmctld", "slurmd", "munged", "srun"):
        if shutil.which(tool) is None:
            raise SystemExit(f"testcluster: {tool} is not installed (apt-get install slurm-wlm munge)")
    d = STATE / "slurm"
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    slurm_conf().write_text(_slurm_conf_text(n))
    _munge_up()
    os.environ["SLURM_CONF"] = str(slurm_conf())  # for the daemons and sinfo below
    env = dict(os.environ)
    # The controller in the root network namespace, under the hostname the conf names; -c:
    # no state from an earlier cluster (a node drained there would be drained here too).
    with open(d / "daemons.out", "ab") as out:  # what a daemon says before its log file is open
        subprocess.Popen(["unshare", "--uts", "sh", "-c", f"hostname {CONTROLLER} && exec slurmctld -c -i -f {slurm_conf()}"],
                         env=env, stdout=out, stderr=out, start_new_session=True)
        for i in range(n):
            subprocess.Popen([*enter(host_name(i)), "slurmd", "-f", str(slurm_conf()), "-N", host_name(i)],
                             env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = _run("sinfo", "-h", "-N", "-o", "%N %t", check=False, quiet=True)
        states = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2) if out.returncode == 0 else {}
        if len(states) == n and all(s in ("idle", "alloc", "mix") for s in states.values()):
            return
        time.sleep(0.5)
    raise SystemExit(f"testcluster: Slurm's nodes did not come up within 60 s (sinfo: {states}); "
                     f"logs in {d}")


def slurm_down() -> None:
    d = STATE / "slurm"
    for pidfile in d.glob("slurmd-*.pid"):
        try:
            cpu_quota(pidfile.stem[len("slurmd-"):], None)
        except OSError:
            pass
    for pidfile in sorted(d.glob("slurmd-*.pid")) + [d / "slurmctld.pid"]:
        try:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)
    _run("pkill", "-KILL", "-f", f"slurm(ctld|d) .*-f {slurm_conf()}", check=False)
    if (d / "munged-started").exists():
        _run("pkill", "-x", "munged", check=False)
        deadline = time.monotonic() + 10
        while _run("pgrep", "-x", "munged", check=False).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        (d / "munged-started").unlink()


def cpu_quota(host: str, cpus: float | None) -> None:
    """Slow one host down: its slurmd (and so every job step Slurm starts there) into a
    cgroup allowed `cpus` CPUs (cgroup v2 cpu.max or v1 cfs quota); None lifts it."""
    pid = (STATE / "slurm" / f"slurmd-{host}.pid").read_text().split()[0]
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    base = Path("/sys/fs/cgroup") if v2 else Path("/sys/fs/cgroup/cpu")
    group = base / f"aibench-testcluster-{host}"
    if cpus is None:
        deadline = time.monotonic() + 10
        while group.exists():
            for p in (group / "cgroup.procs").read_text().split():  # back to the root group
                try:
                    (base / "cgroup.procs").write_text(p)
                except OSError:  # exited meanwhile
                    pass
            try:
                group.rmdir()
            except OSError:  # a process forked in meanwhile, or is still leaving
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return
    group.mkdir(exist_ok=True)
    # A 10 ms period (the quota itself may not be under 1 ms): a benchmark's samples
    # (tens of milliseconds) then see the quota's average rate, not full-speed bursts
    # between throttled gaps that a median would skip.
    period = 10_000
    if v2:
        (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
    else:
        (group / "cpu.cfs_period_us").write_text(str(period))
        (group / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
    (group / "cgroup.procs").write_text(pid)


# --- command line -----------------------------------------------------------------------

SLURM_TOOLS = ("srun", "sbatch", "salloc", "sinfo", "squeue", "scancel", "scontrol")


def _after_dashes(args: list[str]) -> list[str]:
    return args[1:] if args[:1] == ["--"] else args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The pass-through commands take the wrapped program's own options, unparsed.
    if argv[:1] == ["ssh"]:
        return ssh(argv[1:])
    if argv[:1] == ["mpiexec"]:
        os.execvp("nsenter", mpiexec_command(_after_dashes(argv[1:])))
    if argv[:1] == ["exec"] and len(argv) >= 2:
        index_of(argv[1])
        os.execvp("nsenter", [*enter(argv[1]), *(_after_dashes(argv[2:]) or ["sh"])])
    if argv[:1] and argv[0] in SLURM_TOOLS:
        os.environ["SLURM_CONF"] = str(slurm_conf())
        os.environ["UCX_TLS"] = UCX_TLS  # srun passes the environment to the tasks
        os.execvp(argv[0], [argv[0], *_after_dashes(argv[1:])])
    p = argparse.ArgumentParser(prog="testcluster.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="make the hosts (replaces a cluster that is up)")
    u.add_argument("--hosts", type=int, default=4)
    u.add_argument("--rate", default="1gbit", help="each link's rate, tc units (default 1gbit)")
    u.add_argument("--delay", default="0", help="each link's one-way delay (netem; default 0)")
    u.add_argument("--loss", default="0%")
    u.add_argument("--slurm", action="store_true", help="also start munge, slurmctld and one slurmd per host")
    sub.add_parser("down", help="remove everything up made")
    sub.add_parser("status")
    s = sub.add_parser("shape", help="reshape one host's link")
    s.add_argument("host")
    s.add_argument("--rate", default="1gbit")
    s.add_argument("--delay", default="0")
    s.add_argument("--loss", default="0%")
    q = sub.add_parser("cpu-quota", help="give one host's Slurm jobs only this many CPUs (0: lift the limit)")
    q.add_argument("host")
    q.add_argument("cpus", type=float)
    v = sub.add_parser("env", help="give one host environment settings (none: clear them)")
    v.add_argument("host")
    v.add_argument("settings", nargs="*", metavar="KEY=VALUE")
    k = sub.add_parser("slow-pair", help="make the path between two hosts alone slower (HTB + nftables)")
    k.add_argument("host_a")
    k.add_argument("host_b")
    k.add_argument("--rate", default="250mbit")
    sub.add_parser("exec", help="exec HOST [--] COMMAND...: run a command on a host")
    sub.add_parser("mpiexec", help="mpiexec [--] ARGS...: hydra's mpiexec across the hosts")
    for tool in SLURM_TOOLS:
        sub.add_parser(tool, help=f"{tool} [--] ARGS...: Slurm's {tool} with SLURM_CONF set")
    a = p.parse_args(argv)
    if a.cmd == "up":
        up(a.hosts, a.rate, a.delay, a.loss, a.slurm)
    elif a.cmd == "down":
        down()
        print("testcluster: down")
    elif a.cmd == "status":
        return status()
    elif a.cmd == "cpu-quota":
        index_of(a.host)
        cpu_quota(a.host, a.cpus or None)
    elif a.cmd == "env":
        index_of(a.host)
        if any("=" not in kv or any(c.isspace() for c in kv) for kv in a.settings):
            raise SystemExit("testcluster: settings are KEY=VALUE, without spaces")
        path = STATE / f"env-{a.host}"
        path.write_text(" ".join(a.settings)) if a.settings else path.unlink(missing_ok=True)
    elif a.cmd == "slow-pair":
        if shutil.which("nft") is None:
            raise SystemExit("testcluster: slow-pair needs nft (apt-get install nftables)")
        slow_pair(index_of(a.host_a), index_of(a.host_b), a.rate)
    elif a.cmd == "shape":
        shape(index_of(a.host), a.rate, a.delay, a.loss)
    return 0


if __name__ == "__main__":
    sys.exit(main())

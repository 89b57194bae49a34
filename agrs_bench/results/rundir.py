"""The run directory: checked before launch (touching nothing), then taken by one run alone.

A run owns its directory from the moment it takes it: a new run creates it (or takes an empty
one) and creates its lock file exclusively; every run, new or resumed, holds an flock on that
file until it ends, so a second run into the same folder is refused (exit 2) and touches nothing
of the first. The self-launch parent takes the directory before it starts torchrun and tells
rank 0 so through OWNER_ENV; under a bare torchrun rank 0 takes it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
import tempfile
from typing import Any

from agrs_bench import safe_files
from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import ConfigError
from agrs_bench.groups.distributed import raise_if_any_rank
from agrs_bench.results import files as results
from agrs_bench.results import launches, machine, resume, schema

LOCK_FILE = ".agrs_bench.lock"
OWNER_ENV = "AGRS_BENCH_RUN_DIR_OWNER"
"""Set by the self-launch parent to the absolute run directory it holds for its ranks."""
# Every name a run writes into its directory (report.md and plots/ come from render.report):
# a folder holding one of them is a run, or holds files of a user's that a run must not replace.
OUTPUT_NAMES = (*results.RUN_FILES, results.CSV_FILE, "report.md", "plots", "flight_recorder", LOCK_FILE)
NAME_MAX = 255
PATH_MAX = 4096


def check_out_dir(out: str) -> None:
    """The run directory must be new (or empty of a run's names) and creatable; leaves nothing."""
    if not out or not out.strip():
        raise ConfigError("--out '' names no directory")
    check_path_text(out, "--out")
    for part in out.split(os.sep):
        if len(os.fsencode(part)) > NAME_MAX:
            raise ConfigError(f"--out {out[:40]!r}...: a name in it is {len(os.fsencode(part))} bytes long "
                              f"(at most {NAME_MAX})")
    if len(os.fsencode(os.path.abspath(out))) >= PATH_MAX:  # else makedirs leaves half the folders
        raise ConfigError(f"--out {out[:40]!r}...: the path is {len(os.fsencode(os.path.abspath(out)))} "
                          f"bytes long (at most {PATH_MAX - 1})")
    if os.path.islink(out) and not os.path.exists(out):
        raise ConfigError(f"--out {out!r} is a dangling symbolic link (to {os.readlink(out)!r})")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} exists and is not a directory")
    if os.path.isdir(out):
        found = [name for name in OUTPUT_NAMES if os.path.lexists(os.path.join(out, name))]
        if any(name in (*results.RUN_FILES, LOCK_FILE) for name in found):
            raise ConfigError(f"--out {out!r} already holds a run; choose another directory "
                              "(or --resume it)")
        if found:
            raise ConfigError(f"--out {out!r} already holds {found[0]}, which a run would replace; "
                              "choose a new or empty directory")
    ancestor = os.path.abspath(out)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r} is not a directory)")
    try:  # os.access says yes to root on read-only mounts and on folders without w bits
        os.rmdir(tempfile.mkdtemp(prefix=".agrs-probe-", dir=ancestor))
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ConfigError(f"--out {out!r} is not writable ({ancestor!r}: {err.strerror})") from None
        raise ConfigError(f"--out {out!r} cannot be created: no folder can be made in {ancestor!r} "
                          f"({err.strerror})") from None


def check_path_text(path: str, flag: str) -> None:
    """A run directory's name is printed on one line and written into reports: no control
    characters (a newline would split the line it is printed on)."""
    bad = next((c for c in path if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ConfigError(f"{flag} {path[:60]!r} holds the control character {bad!r}; name the "
                          "folder without it")


def check_run_dir(cfg: RunConfig) -> list[dict]:
    """Touches nothing: a new run needs a usable --out; a resumed one, a matching run.
    Returns the finished cells of a resumed run."""
    if cfg.resume:
        return resume.finished_cells(cfg, warn=not owned_by_parent(cfg))  # the parent warned
    if not owned_by_parent(cfg):  # the parent checked it, then took it for this launch
        check_out_dir(cfg.out_dir)
    return []


class RunDirLock:
    """The held lock of a run directory; `created` when this run made the directory itself."""

    def __init__(self, fd: int, path: str, created: bool) -> None:
        self.fd, self.path, self.created = fd, path, created

    def release(self, remove_if_unused: bool = False) -> None:
        """Let go; with `remove_if_unused`, first undo what taking a new directory made, when the
        run wrote nothing into it (bad input found by the ranks)."""
        if self.fd < 0:
            return
        if remove_if_unused:
            folder = os.path.dirname(self.path)
            if set(os.listdir(folder)) <= {LOCK_FILE}:
                os.unlink(self.path)
                if self.created:
                    os.rmdir(folder)
        os.close(self.fd)
        self.fd = -1


def take_run_dir(cfg: RunConfig) -> RunDirLock:
    """Take cfg.out_dir for this run alone (ConfigError, exit 2, when another run has it)."""
    out = cfg.out_dir
    created = False
    if not cfg.resume:
        check_out_dir(out)
        made = _missing_folders(out)
        try:
            os.makedirs(out)
            created = True
        except FileExistsError:
            if not os.path.isdir(out):
                raise ConfigError(f"--out {out!r} exists and is not a directory") from None
        except OSError as err:
            for folder in reversed(made):  # leave no empty folders behind a refusal
                try:
                    if os.path.isdir(folder):
                        os.rmdir(folder)
                except OSError:
                    break
            raise ConfigError(f"--out {out[:60]!r} cannot be created ({err.strerror})") from None
    path = os.path.join(out, LOCK_FILE)
    # O_NONBLOCK: a named pipe put there must not hold the run waiting for a reader;
    # O_NOFOLLOW: nor a link make the run truncate some other file.
    flags = (os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
             | (0 if cfg.resume else os.O_EXCL))
    try:
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise ConfigError(f"--resume {out!r}: {LOCK_FILE} is {safe_files.kind_of(os.lstat(path).st_mode)}, "
                              "not a regular file; remove it first")
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        raise ConfigError(f"--out {out!r} already holds a run (another run took it); choose another "
                          "directory") from None
    except OSError as err:
        raise ConfigError(f"{'--resume' if cfg.resume else '--out'} {out!r}: cannot create "
                          f"{LOCK_FILE} ({err.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EAGAIN, errno.EACCES):
            raise ConfigError(f"{out!r} is in use by another run (pid {_holder(path)}); wait for it "
                              "to end") from None
        raise ConfigError(f"{out!r}: cannot lock {LOCK_FILE} ({err.strerror})") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    lock = RunDirLock(fd, path, created)
    if not cfg.resume:
        others = [n for n in OUTPUT_NAMES if n != LOCK_FILE and os.path.lexists(os.path.join(out, n))]
        if others:  # appeared between the check and the lock
            lock.release()
            raise ConfigError(f"--out {out!r} already holds {others[0]}; choose another directory")
    return lock


def _missing_folders(out: str) -> list[str]:
    """The folders that making `out` would create, outermost first."""
    missing, folder = [], os.path.abspath(out)
    while not os.path.lexists(folder) and folder != os.path.dirname(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing[::-1]


def _holder(path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip() or "?"
    except (OSError, ValueError):
        return "?"


def owned_by_parent(cfg: RunConfig) -> bool:
    return os.environ.get(OWNER_ENV) == os.path.abspath(cfg.out_dir)


def prepare_run_dir(cfg: RunConfig) -> RunDirLock | None:
    """Rank 0 only, once the preflight checks passed: take the run directory (unless the
    self-launch parent holds it) and write config.json. Returns the lock this rank holds."""
    lock = None if owned_by_parent(cfg) else take_run_dir(cfg)
    if cfg.resume:
        results.drop_partial_line(cfg.out_dir)
        return lock
    cell_ids = [c.name for c in cfg.cells()]
    try:
        results.write_atomic(os.path.join(cfg.out_dir, results.CONFIG_FILE),
                             json.dumps(dict(cfg.record(), cells=cell_ids,
                                             launch_id=launches.new_launch_id()), indent=1) + "\n")
    except OSError as err:
        if lock:
            lock.release(remove_if_unused=True)
        raise ConfigError(f"--out {cfg.out_dir!r}: cannot write {results.CONFIG_FILE} ({err.strerror})") from None
    return lock


def stopped_line(out_dir: str, signal_name: str) -> str:
    """What the self-launch parent says after a stop signal: a run whose results.json is
    complete (the signal came after the last cell) is not called incomplete."""
    path = os.path.join(out_dir, results.RESULTS_FILE)
    try:
        doc = schema.load(path)
    except schema.SchemaError:
        try:
            done = len(results.read_cells(out_dir))
        except schema.SchemaError:
            done = 0
        kept = (f"{done} finished cell(s) are in {os.path.join(out_dir, results.CELLS_FILE)}" if done
                else "no cell had finished")
        return f"stopped by {signal_name}; {kept} (finish the run with --resume {out_dir})"
    kept = len(doc["benchmarks"])
    if doc["agrs_bench"].get("complete"):
        return f"stopped by {signal_name} after the run completed; all {kept} cell(s) are in {path}"
    return (f"stopped by {signal_name}; {kept} finished cell(s) kept in {path} (marked incomplete; "
            f"finish it with --resume {out_dir})")


def claim_run_dir(cfg: RunConfig, rank: int) -> list[RunDirLock | None]:
    """Collective: rank 0 makes the run directory this run's ([its claim]; [] on the others). A
    problem leaves every rank as bad input, so that none hangs."""
    owned, problems = [], []
    if rank == 0:
        try:
            owned.append(prepare_run_dir(cfg))
        except ConfigError as err:
            problems.append(str(err))
    raise_if_any_rank(problems, lambda found: ConfigError(found[0]))
    return owned


def write_results(cfg: RunConfig, finished: list[dict], context: dict[str, Any]) -> None:
    """results.json (complete, or marked incomplete with the missing cells) and results.csv.
    `context`: started_utc, machine_info, notes, and the sources not timed on purpose."""
    done = {schema.cell_key(b["params"]) for b in finished}
    untimed = context.get("untimed_sources", ())  # not timed on purpose (megatron_core mismatch)
    missing = [c.name for c in cfg.cells() if c.key not in done and c.source not in untimed]
    doc = results.build_document(finished, machine_info=context["machine_info"],
                                 commit_info=machine.commit_info(), config=cfg.record(),
                                 missing_cells=missing, started_utc=context["started_utc"],
                                 notes=context["notes"])
    results.write_run(cfg.out_dir, doc)


def save_after_failure(prog: str, cfg: RunConfig, save: Any, kept: int) -> None:
    """Rank 0, after a failure was said: save the finished cells; a failing save (disk full,
    read-only) is said too, and the first error stays the one the run ends with."""
    try:
        save()
    except Exception as err:
        print(f"{prog}: rank 0: could not write the results: {type(err).__name__}: "
              f"{' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return
    print(f"agrs_bench: run failed; {kept} finished cell(s) kept in "
          f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} (marked incomplete; "
          f"finish it with --resume {cfg.out_dir})", file=sys.stderr, flush=True)

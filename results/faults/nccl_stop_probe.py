"""Probe (device tool): when does PyTorch's NCCL watchdog on a live rank report a collective whose
peer is SIGSTOPped (or SIGKILLed)? Usage under torchrun --nproc-per-node=2:
    nccl_stop_probe.py CASE    CASE = warm | fresh | kill
warm: the peer stops before an all-gather on a communicator that already ran one;
fresh: the same on a new group's first collective; kill: the peer dies instead.
Rank 0 prints where its main thread is every 5 s and wakes the peer at 40 s (timeout 10 s)."""

import datetime
import faulthandler
import os
import signal
import sys
import threading
import time

import torch
import torch.distributed as dist

case = sys.argv[1]
rank = int(os.environ["RANK"])
device = rank % torch.cuda.device_count()  # one GPU: both ranks share it
torch.cuda.set_device(device)
os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
timeout = datetime.timedelta(seconds=10)
dist.init_process_group("nccl", timeout=timeout, device_id=torch.device("cuda", device))
x = torch.ones(1 << 20, device="cuda")
out = torch.empty(2 << 20, device="cuda")
dist.all_gather_into_tensor(out, x)
torch.cuda.synchronize()
pids = [None, None]
dist.all_gather_object(pids, os.getpid())
group = dist.new_group([0, 1], timeout=timeout) if case == "fresh" else None
if case != "fresh":  # warm the group the probe uses
    dist.all_gather_into_tensor(out, x, group=group)
torch.cuda.synchronize()
dist.barrier()
time.sleep(1)
t0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - t0:6.1f} s rank {rank}] {msg}", file=sys.stderr, flush=True)


if rank == 1:
    log(f"sending myself SIG{'KILL' if case == 'kill' else 'STOP'}")
    os.kill(os.getpid(), signal.SIGKILL if case == "kill" else signal.SIGSTOP)
    log("continued")
    time.sleep(30)
    sys.exit(0)

time.sleep(0.5)
faulthandler.dump_traceback_later(5, repeat=True, file=sys.stderr)


def wake():
    time.sleep(40)
    log("waking rank 1 (SIGCONT)")
    os.kill(pids[1], signal.SIGCONT)


threading.Thread(target=wake, daemon=True).start()
try:
    log("all_gather_into_tensor: launching")
    dist.all_gather_into_tensor(out, x, group=group)
    log("launched; synchronizing")
    torch.cuda.synchronize()
    log("synchronize returned")
except Exception as err:  # noqa: BLE001
    log(f"raised {type(err).__name__}: {str(err)[:200]}")
faulthandler.cancel_dump_traceback_later()
time.sleep(15)
log("exit")
os._exit(0)

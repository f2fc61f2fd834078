"""``multiprocessing`` children that send events and exit without flushing.

usage: mp_app.py START_METHOD KIND WORKERS PER_WORKER
START_METHOD is fork, forkserver, spawn or billiard:fork (Celery's multiprocessing fork). KIND is
``process`` (one Process per worker, joined), ``pool`` (``Pool(2, maxtasksperchild=1)``: every task
in a fresh child, closed and joined), ``pool-with`` (``with Pool(2) as pool``: the workers are
terminated by SIGTERM when the block ends) or ``executor`` (``concurrent.futures.ProcessPoolExecutor``).
Prints ``DONE <pids of the senders>``. Only ``cioguard.instrument()``: no flush anywhere.
``APP_WITHOUT_EXIT_HOOKS=1`` disables cioguard's exit hooks (the control run).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import work

import cioguard

if os.environ.get("APP_WITHOUT_EXIT_HOOKS"):  # the control run: what the hooks are for
    import cioguard.exits

    cioguard.exits.install = lambda: None

# At import: a forkserver preloads __main__, so its children start instrumented like fork's.
cioguard.instrument()


def main() -> int:
    method, kind, workers, per_worker = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if method.startswith("billiard:"):
        import billiard

        ctx = billiard.get_context(method.split(":", 1)[1])
    else:
        ctx = multiprocessing.get_context(method)
    args = [(w, per_worker) for w in range(workers)]
    if kind == "process":
        processes = [ctx.Process(target=work.send, args=a) for a in args]
        for p in processes:
            p.start()
        for p in processes:
            p.join(60)
        pids = [p.pid for p in processes]
        codes = [p.exitcode for p in processes]
        assert codes == [0] * workers, codes
    elif kind == "pool":
        pool = ctx.Pool(2, maxtasksperchild=1)
        pids = pool.starmap(work.send, args, chunksize=1)
        pool.close()
        pool.join()
    elif kind == "executor":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2, mp_context=ctx) as executor:
            pids = list(executor.map(work.send, *zip(*args, strict=True)))
    else:
        with ctx.Pool(2) as pool:
            pids = pool.starmap(work.send, args, chunksize=1)
    print("DONE", " ".join(str(p) for p in sorted(set(pids))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

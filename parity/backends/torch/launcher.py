"""`python -m parity.backends.torch.launcher ARGS`: torchrun (`torch.distributed.run`) with ARGS, as `train --nproc`
and `scale` start it, ending on Ctrl-C or SIGTERM with the signal's exit status instead of a traceback.

torchrun stops its processes on either signal itself (SIGTERM or SIGINT to each, SIGKILL after 30 s), then
raises SignalException out of its main. Its elastic agent's warnings (the closing signal sent to each process,
OMP_NUM_THREADS set to 1) follow LOGLEVEL, as its own loggers do; `parity.training.distributed.launch` sets
ERROR unless --verbose.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> int:
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.run import main as torchrun

    logging.getLogger("torch.distributed.elastic").setLevel(os.environ.get("LOGLEVEL", "WARNING"))
    try:
        torchrun()
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())

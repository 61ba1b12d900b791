"""The controller behind `mlform watch`: passes that tick monitors and scheduled jobs,
decide every retraining policy, open and resolve incidents, and retrain.

It never prints and imports nothing from the command line: it reports each line
through a `say` callback and returns a `PassResult`; the retrain (a plan and an
apply) is a callback the caller gives, so the CLI keeps its own progress display,
interrupt handling and audit entry for it.

    lock.py           hold the state lock for one short step, waiting out other commands
    ticks.py          tick the controllers of some types; record their outputs
    data_versions.py  the current version of each dataset a `new_data` trigger watches
    policies.py       decide each retraining policy (mlform.ml.retraining) for any provider
    passes.py         one pass: ticks, incidents, decisions, retrains
    loop.py           passes every interval, or once
"""

from .loop import watch
from .passes import PassResult, RetrainRequest, one_pass

__all__ = ["PassResult", "RetrainRequest", "one_pass", "watch"]

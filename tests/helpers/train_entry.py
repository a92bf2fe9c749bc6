"""``hybridbatch.training.loop.train`` as a script, for torchrun: ``train_entry.py '<json args>'``."""

from __future__ import annotations

import json
import sys

from hybridbatch.params import setup_logging
from hybridbatch.params import TrainConfig
from hybridbatch.training.loop import train

if __name__ == "__main__":
    setup_logging()
    a = json.loads(sys.argv[1])
    train(a["model"], a["prepared"], a["strategy"], TrainConfig(**a["cfg"]), a["out"], a["live"], a.get("ckpt"),
          timing_path=a.get("timing"))

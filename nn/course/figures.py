"""``show(fig, name)``: a practical's figure, inline in a notebook, saved as a PNG in a script;
and the folders where practicals write their figures and trained networks."""
from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def figures_dir() -> Path:
    """Where scripts save their figures: ``$NN_FIGURES``, else ``./figures``."""
    return Path(os.environ.get("NN_FIGURES") or Path.cwd() / "figures")


def models_dir() -> Path:
    """Where practicals save the networks they train (for a later practical to load):
    ``$NN_MODELS``, else ``./models``."""
    return Path(os.environ.get("NN_MODELS") or Path.cwd() / "models")


def show(fig, name: str, practical: str | None = None):
    """Display ``fig`` inline in a notebook; in a script, save it and print where.

    A notebook run by ``python -m nn run --exercise`` saves its figures as a script does
    (``$NN_SHOW`` is ``save`` in its kernel).

    The file is ``<figures_dir()>/<practical>_<name>.png``, written atomically;
    ``practical`` defaults to the stem of the calling file. Returns the path (``None`` in a
    notebook). The figure is closed afterwards, so a long script does not keep them all.
    """
    import matplotlib.pyplot as plt

    if _in_notebook() and os.environ.get("NN_SHOW") != "save":
        from IPython.display import display
        display(fig)
        plt.close(fig)
        return None
    if practical is None:
        caller = inspect.stack()[1].frame.f_globals.get("__file__")
        practical = Path(caller).stem if caller else os.environ.get("NN_PRACTICAL", "figure")
    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{practical}_{name}.png"
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    tmp.replace(path)
    plt.close(fig)
    print(f"figure saved: {path}")
    return path

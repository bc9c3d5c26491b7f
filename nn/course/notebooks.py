"""Practicals as notebooks: made from the exercises, read back for grading, run in a kernel.

Reading and writing notebooks goes through jupytext (extra ``notebooks``), running one
through nbclient and ipykernel (same extra); none of them is imported before it is needed.

- :func:`exercise_notebook`: the ``.ipynb`` of an exercise, outputs empty, same bytes every
  time (``python -m nn exercises --check`` compares them), opening with :data:`FIRST_CELL`;
- :func:`code_cells`: the code a grader runs from a notebook, cell by cell (IPython magics and
  shell lines left out);
- :class:`NotebookFinder`: ``from im2col import col2im`` finds ``im2col.ipynb`` of the folder;
- :func:`execute`: ``python -m nn run <practical> --exercise`` on a notebook, in a real kernel.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import linecache
import os
import subprocess
import sys
import traceback
import types
from pathlib import Path

# The first cell of every exercise notebook. On a fresh runtime without nn (Colab), it says
# in one line how to install nn, instead of a bare ModuleNotFoundError.
INSTALL = ("nn is not installed in this Python: install it from your copy of the course "
           "(a terminal in that folder: pip install -e '.[notebooks]'; a notebook cell: "
           "%pip install -e <that folder>; on Colab, !git clone the course repository "
           "first), restart the kernel and run this cell again")
FIRST_CELL = f'''\
# Run this cell first: it imports nn, the course's library, and lets this notebook import
# your notebooks of other practicals of this folder (e.g. `from im2col import col2im`).
try:
    import nn.course
except ModuleNotFoundError:
    raise ModuleNotFoundError({INSTALL!r}) from None
nn.course.notebook_imports()'''

EXTRA = "notebooks"


def _jupytext():
    try:
        import jupytext
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading or writing a notebook needs jupytext, which is not installed: "
            f"pip install -e \".[{EXTRA}]\"", name="jupytext") from None
    return jupytext


# making the exercise notebooks


def exercise_notebook(text: str) -> bytes:
    """The notebook of an exercise (jupytext "percent" text): outputs empty, no execution
    count, cell ids numbered and metadata fixed, so the same text always gives the same bytes.
    """
    jupytext = _jupytext()
    from nbformat.v4 import new_code_cell

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.cells.insert(0, new_code_cell(FIRST_CELL))
    for number, cell in enumerate(notebook.cells, start=1):
        cell.id = f"cell-{number}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    data = jupytext.writes(notebook, fmt="ipynb")
    return (data if data.endswith("\n") else data + "\n").encode("utf-8")


def script_text(notebook_path) -> str:
    """A notebook as jupytext "percent" text (a script)."""
    jupytext = _jupytext()
    return jupytext.writes(jupytext.read(notebook_path), fmt="py:percent")


# reading a notebook back


def _is_shell_or_magic(line: str) -> bool:
    text = line.strip()
    return text.startswith(("%", "!")) or (text.endswith("?") and not text.startswith("#"))


def _without_magics(code: str) -> str:
    """``code`` with its IPython magics and shell lines replaced by ``pass`` (same
    indentation, so a block stays a block). Code that compiles is kept as it is, and a cell
    magic (``%%time``, ``%%bash``) leaves out the whole cell."""
    if code.lstrip().startswith("%%"):
        return ""
    try:
        compile(code, "<cell>", "exec")
        return code
    except SyntaxError:
        pass
    lines = []
    for line in code.splitlines(keepends=True):
        if _is_shell_or_magic(line):
            indent = line[:len(line) - len(line.lstrip())]
            line = f"{indent}pass  # left out by the grader: {line.strip()}\n"
        lines.append(line)
    return "".join(lines)


def code_cells(path) -> list[tuple[int, str]]:
    """``(cell number, code)`` of every code cell of the notebook, in order (cells counted
    from 1, markdown cells included, as they appear on screen), magics left out."""
    notebook = _jupytext().read(path)
    return [(number, _without_magics(cell.source))
            for number, cell in enumerate(notebook.cells, start=1)
            if cell.cell_type == "code"]


def cell_filename(path, number: int) -> str:
    """The file name the code of notebook cell ``number`` is compiled under (tracebacks show
    it; ``linecache`` holds its lines)."""
    return f"{path}, cell {number}"


def run_cells(path, namespace: dict) -> list[str]:
    """Run the code cells of notebook ``path`` in ``namespace``; a cell that raises is left
    out and said in the list returned (one sentence per cell)."""
    path = Path(path)
    skipped = []
    for number, code in code_cells(path):
        filename = cell_filename(path, number)
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        try:
            exec(compile(code, filename, "exec"), namespace)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            if isinstance(exc, SyntaxError) and exc.filename == filename:
                where = (exc.lineno, (exc.text or "").strip())
            else:
                frames = [f for f in traceback.extract_tb(exc.__traceback__)
                          if f.filename == filename]
                where = (frames[-1].lineno, (frames[-1].line or "").strip()) if frames \
                    else None
            text = exc.msg if isinstance(exc, SyntaxError) else exc
            message = f"{type(exc).__name__}: {text}".strip().rstrip(":")
            skipped.append(f"cell {number} was left out: it raised {message}"
                           + (f" (line {where[0]}: {where[1]})" if where else ""))
    return skipped


def load_notebook(path: Path, name: str) -> types.ModuleType:
    """A module whose namespace is what the code cells of notebook ``path`` define; the
    cells left out are listed in ``module.__nn_skipped__``."""
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        module.__nn_skipped__ = run_cells(path, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class _NotebookLoader(importlib.abc.Loader):
    def __init__(self, path: Path):
        self.path = path

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__file__ = str(self.path)
        module.__nn_skipped__ = run_cells(self.path, module.__dict__)


class NotebookFinder(importlib.abc.MetaPathFinder):
    """``import name`` finds ``<folder>/<name>.ipynb`` in ``folders``, in order, where no
    script ``<name>.py`` stands in the same folder (the script is found the usual way)."""

    def __init__(self, folders):
        self.folders = [Path(f) for f in folders]

    def find_spec(self, fullname, path=None, target=None):
        if path is not None or "." in fullname:
            return None
        for folder in self.folders:
            if (folder / f"{fullname}.py").is_file():
                return None
            notebook = folder / f"{fullname}.ipynb"
            if notebook.is_file():
                return importlib.util.spec_from_loader(fullname, _NotebookLoader(notebook),
                                                       origin=str(notebook))
        return None


def notebook_imports(folder=None) -> None:
    """In a Jupyter kernel, let ``import name`` find ``name.ipynb`` of ``folder`` (default:
    the kernel's folder, that of the notebook). Elsewhere (a script, the grader, which find
    siblings themselves) it does nothing."""
    from .figures import _in_notebook

    if not _in_notebook():
        return
    folder = Path(folder or os.getcwd()).resolve()
    for finder in sys.meta_path:
        if isinstance(finder, NotebookFinder) and folder in finder.folders:
            return
    sys.meta_path.append(NotebookFinder([folder]))


def run_script(path) -> None:
    """Run the script ``path`` as ``python path`` would (``__name__ == "__main__"``), with
    the notebooks of its folder importable as modules."""
    import runpy

    path = Path(path).resolve()
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.parent))
    sys.meta_path.append(NotebookFinder([path.parent]))
    try:
        runpy.run_path(str(path), run_name="__main__")
    except Exception as exc:  # the traceback from the script on, as python would print it
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != str(path):
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        sys.exit(1)


# running a notebook in a kernel


def _this_python_kernel():
    """A kernel manager that starts ipykernel on this very Python (the one nn runs on),
    whatever kernel specs the machine has."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                            "{connection_file}"],
                      display_name="Python (nn)", language="python", resource_dir="")

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return spec

    return KernelManager(kernel_spec_manager=ThisPython(), kernel_name="python3")


def execute(path, timeout: float | None = None, out=None) -> int:
    """Run notebook ``path`` in a Jupyter kernel started in its folder, cell by cell, and
    print what each cell prints as it comes. Figures shown with ``nn.course.show`` are saved
    as with a script. The file is not changed. Returns 0, or 1 at the first cell that raises
    (its error is printed, with the cell, the line and its text)."""
    out = out or sys.stdout
    path = Path(path).resolve()
    notebook = _jupytext().read(path)
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ModuleNotFoundError:
        print(f"error: running a notebook needs nbclient and ipykernel: pip install -e "
              f"\".[{EXTRA}]\" (or run it in Jupyter)", file=out)
        return 2

    class Client(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream":
                out.write(content.get("text", ""))
                out.flush()
            elif msg.get("msg_type") in ("execute_result", "display_data"):
                text = content.get("data", {}).get("text/plain")
                if text and not text.startswith("<Figure"):
                    print(text, file=out, flush=True)
            return super().output(outs, msg, display_id, cell_index)

    client = Client(notebook, timeout=timeout, km=_this_python_kernel(), allow_errors=False,
                    resources={"metadata": {"path": str(path.parent)}})
    from .figures import figures_dir

    env = {**os.environ, "NN_SHOW": "save", "NN_PRACTICAL": path.stem,
           "NN_FIGURES": str(figures_dir().resolve()), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    # the kernel's own stderr holds only its start-up chatter: what the cells print comes
    # through the kernel's messages
    with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
        for number, cell in enumerate(notebook.cells, start=1):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            try:
                client.execute_cell(cell, number - 1)
            except CellExecutionError:
                error = next((o for o in cell.outputs if o.get("output_type") == "error"), {})
                print(_kernel_error(path, notebook, number, error), file=out)
                return 1
    return 0


def _kernel_error(path: Path, notebook, number: int, error: dict) -> str:
    """A kernel's error in words: what was raised, and each line of the notebook's cells it
    went through (``Cell In[k]`` of IPython's traceback is the cell run k-th)."""
    import re

    run = {cell.get("execution_count"): n for n, cell in enumerate(notebook.cells, start=1)
           if cell.cell_type == "code" and cell.get("execution_count")}
    lines = [f"error in {path.name}, cell {number}: {error.get('ename', 'error')}: "
             f"{error.get('evalue', '')}".rstrip(": ")]
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.get("traceback", [])))
    for count, line, function in re.findall(r"Cell In\[(\d+)\], line (\d+)(?:, in (\w+))?",
                                            text):
        cell = run.get(int(count))
        if cell is None:
            continue
        source = notebook.cells[cell - 1].source.splitlines()
        code = source[int(line) - 1].strip() if 0 < int(line) <= len(source) else ""
        where = f"cell {cell}, line {line}" + (f", in {function}" if function else "")
        lines.append(f"  {where}: {code}")
    return "\n".join(lines)

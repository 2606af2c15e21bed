"""Build hook (the rest is pyproject.toml): a wheel carries boards/ (the
profiles `--board` reads and the board demos `tinyseg deploy` copies) as
host_tools/boards_data, so `pip install .` works as the checkout does.
An editable install reads boards/ in place (host_tools/boards.py)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BOARDS = Path(__file__).resolve().parent / "boards"


class BuildPyWithBoards(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        shutil.copytree(BOARDS, Path(self.build_lib) / "host_tools" / "boards_data", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithBoards})

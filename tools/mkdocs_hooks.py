"""mkdocs hooks for lionr's manual (mkdocs.yml names this file).

The benchmarks write their figures next to their tables, under
``benchmarks/results``; this hook publishes those figures in the site under
the same path, so that a page links ``benchmarks/results/NAME.png`` and the
figure is never copied into ``docs/`` by hand.
"""

from pathlib import Path

from mkdocs.structure.files import File

FIGURES = ("benchmarks/results",)
SUFFIXES = {".png", ".svg"}


def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for folder in FIGURES:
        for path in sorted((root / folder).glob("*")):
            if path.suffix in SUFFIXES:
                uri = path.relative_to(root).as_posix()
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files

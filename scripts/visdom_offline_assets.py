#!/usr/bin/env python3
"""Install visdom's JavaScript, CSS and fonts from the npm registry, for servers with no internet.

visdom 0.2.4 fetches them from CDNs at every start until all are present (offline: a blank page).
This puts them, at build.py's versions and names, with its `version.built` marker, into visdom's
static folder through `npm pack` ($NPM_CONFIG_REGISTRY for a mirror); complete, it does nothing.

    .venv/bin/python scripts/visdom_offline_assets.py            # into the venv's visdom
    .venv/bin/python scripts/visdom_offline_assets.py --check    # exit 1 if a file is missing
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

try:
    import visdom
except ImportError:
    raise SystemExit("visdom is not installed: bash scripts/install.sh first") from None

# package@version -> {path inside the tarball (under package/): path under visdom/static}
GLYPHICONS = "fonts/glyphicons-halflings-regular"
ASSETS: dict[str, dict[str, str]] = {
    "jquery@3.1.1": {"dist/jquery.min.js": "js/jquery.min.js"},
    "bootstrap@3.3.7": {
        "dist/js/bootstrap.min.js": "js/bootstrap.min.js",
        "dist/css/bootstrap.min.css": "css/bootstrap.min.css",
        **{f"dist/{GLYPHICONS}.{ext}": f"{GLYPHICONS}.{ext}"
           for ext in ("eot", "woff2", "woff", "ttf")},
        # build.py saves the SVG font under its URL, fragment included, and looks for that name
        f"dist/{GLYPHICONS}.svg": f"{GLYPHICONS}.svg#glyphicons_halflingsregular"},
    "react@16.2.0": {"umd/react.production.min.js": "js/react-react.min.js"},
    "react-dom@16.2.0": {"umd/react-dom.production.min.js": "js/react-dom.min.js"},
    "react-modal@3.1.10": {"dist/react-modal.min.js": "js/react-modal.min.js"},
    # build.py: https://cdn.plot.ly/plotly-2.11.1.min.js, the same file as this package's.
    "plotly.js-dist-min@2.11.1": {"plotly.min.js": "js/plotly-plotly.min.js"},
    "sjcl@1.0.7": {"sjcl.js": "js/sjcl.js"},
    "layout-bin-packer@1.4.0": {"dist/layout-bin-packer.js": "js/layout_bin_packer.js",
                                "dist/layout-bin-packer.js.map": "js/layout-bin-packer.js.map"},
    # build.py: http://d3js.org/d3.v3.min.js and https://d3js.org/d3-selection-multi.v1.js.
    "d3@3.5.17": {"d3.min.js": "js/d3.v3.min.js"},
    "d3-selection-multi@1.0.1": {"build/d3-selection-multi.js": "js/d3-selection-multi.v1.js"},
    "save-svg-as-png@1.4.17": {"lib/saveSvgAsPng.js": "js/saveSvgAsPng.js"},
    "react-resizable@1.4.6": {"css/styles.css": "css/react-resizable-styles.css"},
    "react-grid-layout@0.16.3": {"css/styles.css": "css/react-grid-layout-styles.css"},
    "classnames@2.2.5": {"index.js": "fonts/classnames"},  # sic: build.py's name and folder
}
MATHJAX = "mathjax@2.7.5"
MATHJAX_DIR = "js/mathjax/2.7.5"
MATHJAX_PAGE = ("MathJax.js", "config/TeX-AMS-MML_HTMLorMML.js")  # what the page loads


def mathjax_keeps(name: str) -> bool:
    """MathJax loads more of itself at run time: all but its unpacked sources, tests,
    accessibility extensions and HTML fonts other than TeX's (23 of 60 MB)."""
    return (not name.startswith(("unpacked/", "test/", "docs/", "extensions/a11y/", "fonts/"))
            or name.startswith("fonts/HTML-CSS/TeX/woff/"))


def missing_files(static: Path) -> list[Path]:
    """Every asset that is absent or empty, and the marker unless it names this visdom."""
    files = [static / dst for mapping in ASSETS.values() for dst in mapping.values()]
    files += [static / MATHJAX_DIR / name for name in MATHJAX_PAGE]
    missing = [p for p in files if not p.is_file() or p.stat().st_size == 0]
    marker = static / "version.built"
    if not marker.is_file() or marker.read_text().strip() != visdom.__version__:
        missing.append(marker)
    return missing


def install(static: Path) -> None:
    """Extract every asset into `static`, the marker last."""
    if shutil.which("npm") is None:
        raise SystemExit("npm not found: the assets come from the npm registry through npm")
    with tempfile.TemporaryDirectory() as tmp:
        specs = [*ASSETS, MATHJAX]
        out = subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, *specs],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"npm pack failed:\n{out.stderr.strip()}")
        for spec, tarball in zip(specs, out.stdout.split(), strict=True):
            with tarfile.open(Path(tmp) / tarball) as tar:
                # the files by their path under the tarball's top folder (package/)
                files = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile()}
                wanted = ({n: f"{MATHJAX_DIR}/{n}" for n in files if mathjax_keeps(n)}
                          if spec == MATHJAX else ASSETS[spec])
                for src, dst in wanted.items():
                    (static / dst).parent.mkdir(parents=True, exist_ok=True)
                    (static / dst).write_bytes(tar.extractfile(files[src]).read())
    (static / "version.built").write_text(visdom.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--static_dir", type=Path,
                        default=Path(visdom.__file__).resolve().parent / "static",
                        help="visdom's static folder (default: the installed visdom's)")
    parser.add_argument("--check", action="store_true",
                        help="only report missing files; exit 1 if any")
    args = parser.parse_args()
    missing = missing_files(args.static_dir)
    if args.check:
        for path in missing:
            print(f"missing: {path}")
        sys.exit(1 if missing else 0)
    if missing:
        install(args.static_dir)
    print(f"visdom's offline assets are complete in {args.static_dir}")


if __name__ == "__main__":
    main()

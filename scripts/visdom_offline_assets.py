#!/usr/bin/env python3
"""Install visdom's JavaScript, CSS and fonts from the npm registry, for servers with no internet.

`visdom` (0.2.4) downloads these from unpkg, cdn.plot.ly, d3js.org and cdnjs every time it starts
until they are all present; offline its page stays blank or the server exits. This script puts the
same files, at the versions visdom/server/build.py asks for, into visdom's static folder under the
names it expects, plus the `version.built` marker, so `visdom -p 15550` then starts without any
network. It is idempotent: a second run with everything in place does nothing.

    .venv/bin/python scripts/visdom_offline_assets.py            # into the venv's visdom
    .venv/bin/python scripts/visdom_offline_assets.py --check    # exit 1 if a file is missing

Tarballs come from the npm registry: through `npm pack` when npm is installed, otherwise straight
from the registry's tarball URLs (override the registry with $NPM_CONFIG_REGISTRY).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

# package@version -> {path inside the tarball (under package/): path under visdom/static}
ASSETS: dict[str, dict[str, str]] = {
    "jquery@3.1.1": {"dist/jquery.min.js": "js/jquery.min.js"},
    "bootstrap@3.3.7": {
        "dist/js/bootstrap.min.js": "js/bootstrap.min.js",
        "dist/css/bootstrap.min.css": "css/bootstrap.min.css",
        **{f"dist/fonts/glyphicons-halflings-regular.{ext}":
           f"fonts/glyphicons-halflings-regular.{ext}"
           for ext in ("eot", "woff2", "woff", "ttf", "svg")},
        # build.py saves the SVG font under its URL, fragment included: its "is it there" check
        # looks for this name.
        "dist/fonts/glyphicons-halflings-regular.svg":
            "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular",
    },
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
# The files build.py fetches from cdnjs; the page loads the first two.
MATHJAX_REQUIRED = ("MathJax.js", "config/TeX-AMS-MML_HTMLorMML.js", "config/Safe.js",
                    "extensions/Safe.js", "jax/output/SVG/fonts/TeX/fontdata.js",
                    "jax/output/SVG/jax.js", "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
                    "jax/output/SVG/config.js")


def mathjax_keeps(name: str) -> bool:
    """MathJax loads more of itself at run time: keep what TeX rendering needs, not the 60 MB of
    alternative fonts, unpacked sources and accessibility extensions."""
    parts = name.split("/")
    if parts[0] in ("unpacked", "test", "docs") or name.startswith("extensions/a11y/"):
        return False
    if parts[0] == "fonts":
        return name.startswith("fonts/HTML-CSS/TeX/woff/")
    if parts[:2] == ["jax", "output"] and len(parts) > 4 and parts[3] == "fonts":
        return parts[4] == "TeX"
    return True


def static_dir() -> Path:
    import visdom

    return Path(visdom.__file__).resolve().parent / "static"


def expected_files(static: Path) -> list[Path]:
    files = [static / dst for mapping in ASSETS.values() for dst in mapping.values()]
    return files + [static / MATHJAX_DIR / name for name in MATHJAX_REQUIRED]


def missing_files(static: Path) -> list[Path]:
    import visdom

    marker = static / "version.built"
    missing = [p for p in expected_files(static) if not p.is_file() or p.stat().st_size == 0]
    if not marker.is_file() or marker.read_text().strip() != visdom.__version__:
        missing.append(marker)
    return missing


def tarball_url(spec: str, registry: str) -> str:
    name, version = spec.rsplit("@", 1)
    return f"{registry.rstrip('/')}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def fetch_tarballs(specs: list[str], dest: Path) -> dict[str, Path]:
    """One `npm pack` for all of them (about 3 s), or plain HTTPS GETs without npm."""
    npm = shutil.which("npm")
    if npm:
        out = subprocess.run([npm, "pack", "--silent", "--pack-destination", str(dest), *specs],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"npm pack failed:\n{out.stderr.strip()}")
        names = out.stdout.split()
        if len(names) != len(specs):
            raise SystemExit(f"npm pack returned {names} for {specs}")
        return {spec: dest / name for spec, name in zip(specs, names, strict=True)}
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org")
    paths = {}
    for spec in specs:
        path = dest / (spec.replace("/", "_").replace("@", "-") + ".tgz")
        with urllib.request.urlopen(tarball_url(spec, registry), timeout=120) as response:
            path.write_bytes(response.read())
        paths[spec] = path
    return paths


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Files of an npm tarball by their path under its top folder (usually package/)."""
    return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}


def install(static: Path) -> int:
    """Extract every asset into `static`; returns the number of files written."""
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = fetch_tarballs([*ASSETS, MATHJAX], Path(tmp))
        for spec, mapping in ASSETS.items():
            with tarfile.open(tarballs[spec]) as tar:
                found = members(tar)
                for src, dst in mapping.items():
                    if src not in found:
                        raise SystemExit(f"{spec} has no {src}")
                    write(static / dst, tar.extractfile(found[src]).read())
                    count += 1
        with tarfile.open(tarballs[MATHJAX]) as tar:
            for name, member in members(tar).items():
                if mathjax_keeps(name):
                    data = tar.extractfile(member).read()
                    write(static / MATHJAX_DIR / name, data)
                    count += 1
    import visdom

    (static / "version.built").write_text(visdom.__version__)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--static_dir", type=Path, default=None,
                        help="visdom's static folder (default: the installed visdom's)")
    parser.add_argument("--check", action="store_true",
                        help="only report missing files; exit 1 if any")
    parser.add_argument("--force", action="store_true", help="reinstall even if complete")
    args = parser.parse_args()
    try:
        static = args.static_dir or static_dir()
    except ImportError:
        raise SystemExit("visdom is not installed: bash scripts/install.sh first") from None
    missing = missing_files(static)
    if args.check:
        for path in missing:
            print(f"missing: {path}")
        sys.exit(1 if missing else 0)
    if not missing and not args.force:
        print(f"visdom's offline assets are complete in {static}")
        return
    count = install(static)
    still = missing_files(static)
    if still:
        raise SystemExit(f"still missing after install: {', '.join(map(str, still))}")
    print(f"installed {count} visdom asset files into {static}")


if __name__ == "__main__":
    main()

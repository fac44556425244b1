#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv in the repo and install the requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_BIN=${PYTHON_BIN:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# visdom (live plots; see requirements-visdom.txt for why it is installed this way). Skipped when
# the pinned versions are already there, so a second run stays quick.
if ! .venv/bin/python - 2>/dev/null <<'PY'
import tornado, visdom
assert visdom.__version__ == "0.2.4" and tornado.version_info < (6, 6)
PY
then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'setuptools<82' wheel
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
    -r requirements-visdom.txt
fi
# visdom's JavaScript/CSS/fonts from the npm registry, so `visdom -p 15550` needs no CDN.
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python scripts/visdom_offline_assets.py \
    || echo "warning: visdom's static assets were not installed; the visdom page needs the" \
            "internet until scripts/visdom_offline_assets.py succeeds" >&2
else
  echo "note: npm not found: run scripts/visdom_offline_assets.py where npm is installed for an" \
       "offline visdom page" >&2
fi

"""GX Data Docs that work without network.

GX's pages load jQuery, Bootstrap, bootstrap-table, a date picker and Font Awesome from public
CDNs, and the index draws its table of validation runs with bootstrap-table: offline (an
air-gapped host, or an operator on a train) the index lists no runs at all. After each build the
pages written by it are pointed at copies shipped in `data_docs_assets/` (pinned versions, licences
in `LICENSES.txt`), copied once into the site's `static/vendor/`. Everything else a page would
fetch from outside is dropped: chart libraries (the gate's suites draw no charts), a dark theme,
and the logo GX serves with the data context's id in its address (replaced by the site's own
copy). Links a person may click (GX's documentation) stay as they are.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("data_docs_assets")
VENDOR = Path("static") / "vendor"

# What GX 1.x pages load from outside -> the shipped copy under static/vendor/.
LOCAL_COPIES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome/css/all.min.css"
    ),
}
# The site's own logo, for the one GX loads from its servers.
SITE_LOGO = "static/images/logo-long.png"

_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"(https?://[^\"]+)\"[^>]*>\s*</script>", re.I)
_LINK = re.compile(r"<link\b[^>]*\bhref=\"(https?://[^\"]+)\"[^>]*>", re.I)
_IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"(https?://[^\"]+)\"[^>]*>", re.I)
_CSS_URL = re.compile(r"url\(\s*['\"]?(https?://[^)'\"]+)['\"]?\s*\)", re.I)
_SRI = re.compile(r"\s+(?:integrity|crossorigin)=\"[^\"]*\"", re.I)


def make_offline(site: Path, pages: Iterable[Path]) -> dict[str, int]:
    """Rewrite `pages` (HTML files under `site`) to load nothing from outside; returns counts
    of references pointed at shipped copies and of those dropped."""
    _install_assets(site)
    counts = {"pages": 0, "local": 0, "dropped": 0}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        prefix = "../" * (len(page.relative_to(site).parts) - 1)
        rewritten = _rewrite(text, prefix, counts)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
            counts["pages"] += 1
    if counts["dropped"]:
        log.info(
            "Data Docs: %d outside references dropped (none needed offline)", counts["dropped"]
        )
    return counts


def _install_assets(site: Path) -> None:
    target = site / VENDOR
    if not (target / "jquery.min.js").exists():
        shutil.copytree(ASSETS, target, dirs_exist_ok=True)
    for sheet in (site / "static" / "styles").glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        if _CSS_URL.search(text):
            sheet.write_text(_CSS_URL.sub("none", text), encoding="utf-8")


def _rewrite(text: str, prefix: str, counts: dict[str, int]) -> str:
    def local_or_drop(match: re.Match[str]) -> str:
        url = match.group(1)
        tag = match.group(0)
        if url in LOCAL_COPIES:
            counts["local"] += 1
            local = f"{prefix}{VENDOR.as_posix()}/{LOCAL_COPIES[url]}"
            return _SRI.sub("", tag.replace(url, local))
        if tag.lower().startswith("<img"):
            counts["local"] += 1
            return tag.replace(url, f"{prefix}{SITE_LOGO}")
        counts["dropped"] += 1
        return ""

    for pattern in (_SCRIPT, _LINK, _IMAGE):
        text = pattern.sub(local_or_drop, text)
    counts["dropped"] += len(_CSS_URL.findall(text))
    return _CSS_URL.sub("none", text)


def outside_loads(text: str) -> list[str]:
    """Addresses a page would still load from outside (scripts, style sheets, images)."""
    found = []
    for pattern in (_SCRIPT, _LINK, _IMAGE, _CSS_URL):
        found += [m.group(1) for m in pattern.finditer(text)]
    return found

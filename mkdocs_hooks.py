"""mkdocs hooks of the documentation site (mkdocs.yml lists this file).

- The specification lives outside ``docs/`` (``spec/``, the vectors' README):
  ``on_files`` adds those files to the site under ``spec/``, and
  ``on_page_markdown`` rewrites every relative link that leaves ``docs/`` to
  where the target is in the site. The Markdown keeps its repository-relative
  links, so it also reads well on GitHub. A link to a file of the repository
  that the site does not hold (``REPOSITORY_LINKS`` has no entry for it) is a
  warning, which fails the strict build.
- The docs' fences carry words for the tests after the language
  (``python no-run``, ``python file=NAME``, ``console no-run: REASON``, see
  tests/test_docs_examples.py and tests/test_cli_docs.py). ``on_page_markdown``
  keeps the language only (a ``file=NAME`` becomes the block's title), since
  the Markdown extensions refuse a fence with words they do not know.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("mkdocs.hooks.mrecordlog")

# Files of the repository outside docs/ that the site holds: path -> page.
REPOSITORY_PAGES = {
    "spec/SEMANTICS.md": "spec/SEMANTICS.md",
    "spec/FORMAT.md": "spec/FORMAT.md",
    "spec/DURABILITY.md": "spec/DURABILITY.md",
    "spec/CONFORMANCE.md": "spec/CONFORMANCE.md",
    "tests/vectors/mrecordlog-0.5/README.md": "spec/vectors-0.5.md",
}
# Other files of the repository that pages link to: path -> page (and anchor).
REPOSITORY_LINKS = {
    **REPOSITORY_PAGES,
    "src/mrecordlog/model.py": "api.md#mrecordlog.model",
}
_SOURCE_OF_PAGE = {page: path for path, page in REPOSITORY_PAGES.items()}

_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>[\w.+-]+)[ \t]+(?P<words>[^`\n]+)$", re.MULTILINE)
# An inline link or image target: ](target) or ](target "title").
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def on_files(files: Files, config: Any) -> Files:
    for path, page in REPOSITORY_PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / path)))
    return files


def _fence(match: re.Match[str]) -> str:
    title = re.search(r"(?:^|\s)file=(\S+)", match["words"])
    suffix = f' title="{title[1]}"' if title else ""
    return f"{match['fence']}{match['lang']}{suffix}"


def _rewrite_link(page_uri: str, match: re.Match[str]) -> str:
    target = match["target"]
    if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return match[0]  # a URL, an anchor of this page, or absolute (mkdocs warns)
    path, _, anchor = target.partition("#")
    source = _SOURCE_OF_PAGE.get(page_uri, "docs/" + page_uri)
    in_repository = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if in_repository.startswith("docs/"):
        site_target = in_repository.removeprefix("docs/")
    elif in_repository in REPOSITORY_LINKS:
        site_target = REPOSITORY_LINKS[in_repository]
    else:
        log.warning("%s links to %s, a file of the repository the site does not hold", page_uri, in_repository)
        return match[0]
    if anchor:
        site_target = site_target.partition("#")[0] + "#" + anchor
    relative = posixpath.relpath(site_target.partition("#")[0], posixpath.dirname(page_uri) or ".")
    fragment = site_target.partition("#")[2]
    return f"]({relative}{'#' + fragment if fragment else ''}{match['title'] or ''})"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    markdown = _FENCE.sub(_fence, markdown)
    return _LINK.sub(lambda match: _rewrite_link(page.file.src_uri, match), markdown)

"""axe-core in every page the browser tests open (docs/accessibility.md).

axe-core is vendored in ``tests/browser/axe/`` (from the npm registry, with its licence), never
fetched from a CDN. It is added to every page of a watched browser context as an init script:
Playwright hands init scripts to Chromium through the DevTools protocol, so the portal's
Content-Security-Policy (``script-src 'self'``) does not block it and need not be bypassed.

``watch(context, recorder)`` runs axe on each page of the portal as soon as it has loaded; the
``Recorder`` keeps the serious and critical violations, and the browser tests' autouse
fixture fails the test that saw any (``recorder.check_open_pages`` also checks the page each
tab is on at the end, in case the test navigated on before the check finished).
"""

from __future__ import annotations

from pathlib import Path

AXE_JS = Path(__file__).parent / "axe" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")

# One axe run per document for the automatic check (the load handler and the end-of-test
# check share it: axe refuses to run twice at once). ``fresh`` checks the page as it is now:
# it runs axe again after that first run, unless nothing in the document (elements,
# attributes, text) changed since the first run began: then the first run's result is the
# result on the page as it is now (an axe run takes about 0.1 s, and the explicit checks of
# tests/browser/test_accessibility.py come right after the automatic one on an unchanged page).
RUN_AXE = """async (fresh) => {
  if (!window.axe) { return null; }
  const summarise = (result) => result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.html.slice(0, 160)),
  }));
  const options = {resultTypes: ["violations"]};
  if (!window.__portalAxe) {
    const state = {token: Math.random().toString(36).slice(2), changed: false};
    new MutationObserver(() => { state.changed = true; }).observe(document, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    state.result = window.axe.run(document, options).then(summarise);
    window.__portalAxe = state;
  }
  const first = await window.__portalAxe.result;
  if (!fresh) { return {token: window.__portalAxe.token, violations: first}; }
  if (!window.__portalAxe.changed) { return {token: null, violations: first, reused: true}; }
  return {token: null, violations: summarise(await window.axe.run(document, options))};
}"""


def _run(page, fresh: bool) -> dict:
    found = page.evaluate(RUN_AXE, fresh)
    assert found is not None, "axe-core is not loaded: open pages from a watched context"
    found["violations"] = [v for v in found["violations"] if v["impact"] in FAILING_IMPACTS]
    return found


def axe_violations(page) -> list[dict]:
    """The serious and critical axe violations of the page as it is now (axe is loaded in the
    pages of a watched context)."""
    return _run(page, fresh=True)["violations"]


def describe(url: str, violations: list[dict]) -> str:
    lines = [f"{url}:"]
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        lines.extend(f"      {node}" for node in v["nodes"])
    return "\n".join(lines)


class Recorder:
    """Which portal pages were checked, and the violations found, during one test."""

    def __init__(self) -> None:
        self.base_url: str | None = None
        self.checked: list[str] = []
        self.failures: list[str] = []
        self.contexts: list = []
        self.tokens: set[str] = set()

    def reset(self, base_url: str | None) -> None:
        self.base_url = base_url
        self.checked = []
        self.failures = []
        self.contexts = []
        self.tokens = set()

    def wants(self, url: str) -> bool:
        return bool(self.base_url) and url.startswith(self.base_url + "/")

    def check(self, page) -> None:
        """Run axe on the page now (if it is the portal's); a page that navigates away while
        axe runs is checked on its next load instead."""
        url = page.url
        if not self.wants(url):
            return
        try:
            found = _run(page, fresh=False)
        except Exception:  # the page navigated or closed meanwhile
            return
        if page.url != url or found["token"] in self.tokens:
            return  # another document by now, or this one was checked already
        self.tokens.add(found["token"])
        self.checked.append(url)
        if found["violations"]:
            self.failures.append(describe(url, found["violations"]))

    def check_open_pages(self) -> None:
        for context in self.contexts:
            try:
                pages = list(context.pages)
            except Exception:
                continue
            for page in pages:
                if not page.is_closed():
                    self.check(page)


def watch(context, recorder: Recorder):
    """Load axe into every page of the context and check each portal page on load."""
    context.add_init_script(path=str(AXE_JS))
    recorder.contexts.append(context)

    def on_page(page) -> None:
        page.on("load", lambda p: recorder.check(p))

    for page in context.pages:
        on_page(page)
    context.on("page", on_page)
    return context


class WatchedBrowser:
    """The session's browser, whose new contexts are watched by the recorder."""

    def __init__(self, browser, recorder: Recorder) -> None:
        self._browser = browser
        self._recorder = recorder

    def new_context(self, **kwargs):
        return watch(self._browser.new_context(**kwargs), self._recorder)

    def new_page(self, **kwargs):
        return self.new_context(**kwargs).new_page()

    def __getattr__(self, name):
        return getattr(self._browser, name)

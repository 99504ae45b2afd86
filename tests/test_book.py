"""The article (paper/): its verdict rules, its offline build, and the built book as a reader sees it.

Fast tests check the rules that turn numbers into verdict text (paper/bookdata.py) and the offline
set-up (vendored MathJax). The slow tests run the real tiny sweep (conf/sweep/test.yaml) with
Snakemake in a temporary working directory -- training, statistics, depth study, figures and the
`book` rule, exactly as `snakemake --cores all` does -- and then check the built HTML: no network
resource, every internal link resolves, the numbers are the results' numbers, and, in headless
Chromium, every page loads without console errors, every image loads and the math is typeset.
Screenshots go to <tmp>/sweep/results/screenshots/ (and to $ACTLAB_SCREENSHOTS if set).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import TEST_RESULTS

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "paper"
BIN = Path(sys.executable).parent
PAGES = ["index", "definitions", "methods", "results", "errata", "appendix", "bibliography"]

sys.path.insert(0, str(PAPER))
import bookdata as bd  # noqa: E402

# -----------------------------------------------------------------------------
# the verdict rules


def comparison(diff, lo, hi, p, n=5):
    return bd.Comparison("gelu", "relu", n, diff, lo, hi, p)


@pytest.mark.parametrize(
    "diff, p, expected",
    [
        (0.02, 0.01, "higher"),
        (-0.02, 0.049, "lower"),
        (0.02, 0.05, "inseparable"),  # p == alpha is not below it
        (0.02, 0.2, "inseparable"),
        (0.02, float("nan"), "inseparable"),
        (0.0, 0.0, "inseparable"),
    ],
)
def test_separation_needs_holm_p_below_alpha(diff, p, expected):
    assert bd.separation(diff, p) == expected


def comparison_tost(diff, lo, hi, p, p_tost, n=5):
    return bd.Comparison("leaky_relu", "relu", n, diff, lo, hi, p, p_tost)


def test_close_is_decided_by_tost_and_different_needs_the_ci_outside_the_margin():
    nan = float("nan")
    # equivalent within +-1 pp (TOST p < 0.05): close, whether or not the difference is significant
    assert bd.close(comparison_tost(0.001, -0.004, 0.006, 0.7, 0.03)) == "close"
    assert bd.close(comparison_tost(0.004, 0.003, 0.005, 0.001, 0.03)) == "close"
    # significant, but the whole CI inside +-1 pp and no equivalence shown: undecided, not "different"
    assert bd.close(comparison_tost(0.004, 0.001, 0.007, 0.001, 0.2)) == "unresolved"
    # significant and the whole CI outside the margin: different
    assert bd.close(comparison_tost(0.03, 0.02, 0.04, 0.001, 1.0)) == "different"
    assert bd.close(comparison_tost(-0.03, -0.04, -0.02, 0.001, 1.0)) == "different"
    # CI beyond the margin but not separated, or a CI straddling the margin: undecided
    assert bd.close(comparison_tost(0.03, 0.02, 0.04, 0.3, 1.0)) == "unresolved"
    assert bd.close(comparison_tost(0.012, 0.005, 0.02, 0.001, 0.6)) == "unresolved"
    # a narrow CI inside the margin is not equivalence without the test
    assert bd.close(comparison(0.001, -0.004, 0.006, 0.7)) == "unresolved"
    assert bd.close(comparison(0.0, nan, nan, nan, n=1)) == "unresolved"


def test_comparison_text_says_what_was_measured():
    text = comparison(0.0123, -0.004, 0.0286, 0.4123).text()
    assert text == "GELU − ReLU = +1.2 pp (95% CI −0.4 pp to +2.9 pp, Holm p = 0.412, 5 seeds)"


def test_number_formats():
    assert bd.pct(0.96412) == "96.4%"
    assert bd.pp(-0.00004) == "+0.0 pp"  # no "-0.0"
    assert bd.pp(-0.0123) == "−1.2 pp" and bd.pct(0.5, unit=False) == "50.0"
    assert bd.clip01(-0.01) == 0.0 and bd.clip01(0.3) == 0.3
    assert bd.pvalue(0.0004) == "p < 0.001"
    assert bd.ci(float("nan"), 1.0).startswith("no CI")
    assert bd.seconds(0.25) == "0.25 s" and bd.seconds(95) == "95 s" and bd.seconds(600) == "10.0 min"
    assert bd.join(["a", "b", "c"]) == "a, b and c"


def test_paired_comparisons_pair_by_seed_and_holm_correct():
    import pandas as pd

    def table(n):
        rows = [("relu", s, 0.90 + 0.001 * s) for s in range(n)]
        rows += [("gelu", s, 0.95 + 0.001 * s + 0.0005 * (s % 2)) for s in range(n)]
        rows += [("tanh", s, 0.90 + 0.001 * s + 0.002 * (-1) ** s) for s in range(n)]
        return pd.DataFrame(rows, columns=["activation", "seed", "test_acc"])

    # 7 seeds: the exact sign-flip test can reach 2 / 2^7, 0.031 after Holm over 2
    gelu, tanh = bd.paired_comparisons(table(7), "relu", ["gelu", "tanh"])
    assert gelu.n == 7 and gelu.outcome == "higher" and abs(gelu.diff - (0.05 + 0.0005 * 3 / 7)) < 1e-9
    assert gelu.p_holm == pytest.approx(2 * 2 / 2**7)
    assert tanh.outcome == "inseparable"
    assert gelu.p_holm <= 1 and tanh.p_holm >= gelu.p_holm
    assert gelu.p_tost == pytest.approx(1.0) and tanh.p_tost == pytest.approx(1 / 2**7)  # tanh within 1 pp
    # 5 seeds: every seed higher is still p = 0.0625 (0.125 after Holm), not separated
    gelu5, _ = bd.paired_comparisons(table(5), "relu", ["gelu", "tanh"])
    assert gelu5.p_holm == pytest.approx(0.125) and gelu5.outcome == "inseparable"


def _claims():
    import claims

    return claims


def _defined_labels(methods: str) -> list[str]:
    """The terms of the definition lists in methods.md's "## Verdicts" section, in order."""
    section = methods[methods.index("\n## Verdicts\n") :]
    section = section[: section.index("\n## ", 1)]
    lines = section.splitlines()
    return [a.strip() for a, b in zip(lines, lines[1:]) if b.startswith(": ") and a.strip()]


def test_the_verdict_vocabulary_is_the_one_methods_defines():
    claims = _claims()
    assert _defined_labels((PAPER / "methods.md").read_text()) == claims.labels()
    assert claims.VERDICTS == ("supported", "contradicted", "cannot be decided")
    assert claims.label("cannot be decided", "not tested") == "cannot be decided (not tested)"
    for bad in [
        ("not supported", ""),
        ("cannot be decided", ""),
        ("supported", "not tested"),
        ("cannot be decided", "x"),
    ]:
        with pytest.raises(ValueError):
            claims.label(*bad)
    with pytest.raises(ValueError, match="vocabulary"):  # a verdict cannot carry a label methods.md does not define
        claims.Verdict("b", "not resolved", "", "")
    with pytest.raises(ValueError, match="vocabulary"):
        claims.Verdict("a", "supported", "", "", [("GELU highest", "partly supported")])
    # a claim of parts: supported if all are, contradicted if one is, else the reason they share
    u = claims.label("cannot be decided", "not separated")
    assert claims.combine(["supported", "supported"]) == "supported"
    assert claims.combine(["supported", u, "contradicted"]) == "contradicted"
    assert claims.combine(["supported", u, u]) == u
    assert (
        claims.combine([u, claims.label("cannot be decided", "not tested")]) == "cannot be decided (a part undecided)"
    )


def test_a_verdict_names_its_data_with_its_size_and_its_model(tmp_path, monkeypatch):
    import json

    import pandas as pd

    prov = {"split_seed": 0, "n_train": 3000, "n_val": 1000, "n_test": 1000}
    rows = []
    for exp, dataset in (("m1d", "mnist1d"), ("subset", "mnist_subset")):
        run = tmp_path / "runs" / exp / "relu" / "seed0"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("model: {name: mlp, depth: 2, width: 128}\n")
        (run / "summary.json").write_text(json.dumps({"data_provenance": prov}))
        rows.append(
            {"experiment": exp, "dataset": dataset, "model": "mlp", "depth": 2, "width": 128, "run_dir": str(run)}
        )
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    monkeypatch.setattr(bd, "RESULTS", tmp_path)
    bd.table.cache_clear()
    bd.run_config.cache_clear()
    try:
        claims = _claims()
        assert claims.rests_on("m1d") == "MNIST-1D of 5,000 examples, 2×128 MLP"
        assert claims.rests_on("subset") == "MNIST subset (5,000 real digits), 2×128 MLP"  # the name says it
        run = tmp_path / "runs" / "m1d" / "relu" / "seed0"
        (run / "summary.json").write_text(json.dumps({"data_provenance": {}}))  # a loader that records no sizes
        assert claims.rests_on("m1d") == bd.experiment_name("m1d") == "MNIST-1D, 2×128 MLP"
    finally:
        bd.table.cache_clear()
        bd.run_config.cache_clear()


def test_methods_states_each_rule_with_the_constants_the_code_applies():
    """The thresholds of the rules reach the methods' text only through glue from the constants
    claims.py and bookdata.py decide with, so the text cannot say another number than the code uses."""
    from actlab import stats

    # every constant the pages and claims.py read from bookdata is there (bookdata re-exports some)
    assert (bd.ALPHA, bd.CLOSE_MARGIN) == (stats.ALPHA, stats.EQUIVALENCE_MARGIN)
    for const in ("BASELINE", "NOTICEABLE", "OFTEN", "MINUS", "PRETTY", "DATASETS", "MODELS", "INITS", "RESULTS"):
        assert hasattr(bd, const), const
    methods = (PAPER / "methods.md").read_text()
    for glued in (
        'glue("alpha", f"{bd.ALPHA:g}"',
        'glue("close_margin", bd.pp(bd.CLOSE_MARGIN, sign=False)',
        'glue("noticeable", f"{(bd.NOTICEABLE - 1) * 100:.0f}%"',
        'glue("often", bd.pct(bd.OFTEN, 0)',
    ):
        assert glued in methods, glued
    rules = methods[methods.index("The verdicts follow fixed rules") : methods.index("## Depth study")]
    for key in ("alpha", "close_margin", "noticeable", "often"):
        assert f"{{glue:text}}`{key}`" in rules, key
    # the rules of (c) in words match the functions: "often" by the lower end, its converse by the upper end
    claims = _claims()
    o = bd.OFTEN
    assert claims.often_born_dead(o) and not claims.often_born_dead(o - 1e-9)
    assert claims.rarely_born_dead(o - 1e-9) and not claims.rarely_born_dead(o)
    assert "lower end of the 95% CI" in " ".join(rules.split()) and "`claims.rarely_born_dead`" in rules
    # (d): "noticeably" is the whole CI above NOTICEABLE, "within" the whole CI below it
    assert claims.cost_outcome(bd.NOTICEABLE + 1e-9, 2.0) == "noticeably slower"
    assert claims.cost_outcome(0.5, bd.NOTICEABLE - 1e-9) == "within"
    assert claims.cost_outcome(bd.NOTICEABLE - 1e-9, bd.NOTICEABLE + 1e-9) == "unresolved"


def test_results_dir_is_configurable(monkeypatch):
    try:
        monkeypatch.setenv("ACTLAB_RESULTS", "../elsewhere")
        assert importlib.reload(bd).RESULTS == (ROOT / "elsewhere").resolve()  # relative to paper/
        monkeypatch.setenv("ACTLAB_RESULTS", "/tmp/abs-results")
        assert importlib.reload(bd).RESULTS == Path("/tmp/abs-results")
        monkeypatch.delenv("ACTLAB_RESULTS")
        assert importlib.reload(bd).RESULTS == ROOT / "results"
        with pytest.raises(bd.MissingResult, match="run the pipeline"):
            bd.path("no/such/table.csv")
    finally:
        monkeypatch.undo()
        importlib.reload(bd)


def test_mathjax_is_vendored_and_configured():
    import yaml

    js = PAPER / "_static" / "mathjax" / "tex-svg-full.js"
    assert js.is_file() and js.stat().st_size < 3_000_000, "run scripts/vendor_mathjax.sh"
    assert (PAPER / "_static" / "mathjax" / "LICENSE").is_file()
    cfg = yaml.safe_load((PAPER / "_config.yml").read_text())
    assert cfg["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-svg-full.js"
    assert cfg["execute"]["execute_notebooks"] == "force"  # results change without the pages changing


def test_every_page_is_in_the_toc_and_computing_pages_are_myst_notebooks():
    import yaml

    toc = yaml.safe_load((PAPER / "_toc.yml").read_text())
    assert [toc["root"], *(c["file"] for c in toc["chapters"])] == PAGES
    for page in PAGES:
        text = (PAPER / f"{page}.md").read_text()
        if "```{code-cell}" in text:
            assert text.startswith("---\n") and "kernelspec:" in text.split("---")[1], page


def test_no_typed_numbers_in_the_prose():
    """Numbers in the computing pages' prose come from glue; digits typed into the text would not
    follow a new sweep. Allowed: equation content, citations, years and the fixed design constants."""
    allowed = {"0", "1", "2", "5", "8", "95", "100"}  # 95% CIs, 5% level, 8x8 digits, 0-100%, 1-D ..
    for page in PAGES:
        text = (PAPER / f"{page}.md").read_text()
        if "```{code-cell}" not in text:
            continue
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code cells and fenced blocks
        prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", prose, flags=re.S)  # math
        prose = re.sub(r"\{[a-z:]+\}`[^`]*`|`[^`]*`", "", prose)  # roles, inline code
        prose = re.sub(r"^---.*?---", "", prose, flags=re.S)  # front matter
        numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?", prose))
        assert numbers <= allowed, f"{page}.md types numbers {sorted(numbers - allowed)}; glue them from results"


# -----------------------------------------------------------------------------
# the tiny sweep, and the book built from it (shared with test_notebooks.py)


@functools.cache
def tiny_sweep(base: str) -> dict:
    """Run the real tiny sweep, book included, with Snakemake in <base>/sweep; once per session."""
    work = Path(base) / "sweep"
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(BIN / "snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(work),
        "--cores",
        "2",
        "--configfile",
        str(ROOT / "conf" / "sweep" / "test.yaml"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=work)
    elapsed = time.perf_counter() - t0
    results = work / TEST_RESULTS  # the test sweep's tables, figures and book (conftest.TEST_RESULTS)
    log = results / "logs" / "book.log"
    if proc.returncode != 0:
        tail = log.read_text()[-3000:] if log.exists() else ""
        raise AssertionError(f"tiny sweep failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n--- book.log:\n{tail}")
    bench = results / "benchmarks" / "book.tsv"
    book_s = float(bench.read_text().splitlines()[1].split("\t")[0]) if bench.exists() else float("nan")
    return {
        "work": work,
        "results": results,
        "html": results / "book" / "html",
        "elapsed": elapsed,
        "book_seconds": book_s,
    }


def existing_book() -> dict | None:
    """$ACTLAB_BOOK_HTML (a built book) + $ACTLAB_RESULTS (its results): check that book instead of
    running the tiny sweep, e.g. the default sweep's: ACTLAB_RESULTS=$PWD/results
    ACTLAB_BOOK_HTML=$PWD/paper/_build/html pytest tests/test_book.py."""
    html_dir, results = os.environ.get("ACTLAB_BOOK_HTML"), os.environ.get("ACTLAB_RESULTS")
    if not html_dir:
        return None
    if not results:
        raise RuntimeError("ACTLAB_BOOK_HTML needs ACTLAB_RESULTS (the results that book was built from)")
    return {
        "work": None,
        "results": Path(results).resolve(),
        "html": Path(html_dir).resolve(),
        "elapsed": float("nan"),
        "book_seconds": float("nan"),
    }


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    existing = existing_book()
    if existing:
        return existing
    if not (BIN / "snakemake").exists():
        pytest.skip("snakemake is not installed in this environment")
    return tiny_sweep(str(tmp_path_factory.getbasetemp() / "book"))


class _Tags(html.parser.HTMLParser):
    """Every (tag, attrs) and every id of one HTML file."""

    def __init__(self):
        super().__init__()
        self.tags, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])


@functools.cache
def parse(path: Path) -> _Tags:
    p = _Tags()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def html_files(root: Path) -> list[Path]:
    return sorted(root.glob("*.html"))


@pytest.mark.slow
def test_book_builds_from_the_tiny_sweep(built_book):
    html = built_book["html"]
    for page in PAGES:
        assert (html / f"{page}.html").is_file(), page
    # the book rule ran on the sweep's results and recorded what it did
    if built_book["work"] is not None:  # built by the pipeline's book rule here
        assert (built_book["results"] / "logs" / "book.log").is_file()
        assert (built_book["results"] / "sweep.json").is_file()
    print(f"tiny sweep + book: {built_book['elapsed']:.0f} s, of which the book {built_book['book_seconds']:.0f} s")


@pytest.mark.slow
def test_built_html_loads_nothing_from_the_network(built_book):
    bad = []
    for f in html_files(built_book["html"]):
        for tag, attrs in parse(f).tags:
            for attr in ("src", "href", "srcset", "data-src", "poster"):
                value = attrs.get(attr) or ""
                if tag == "a" and attr == "href":
                    continue  # a link the reader may follow is not a load
                if re.match(r"\s*(https?:)?//", value):
                    bad.append(f"{f.name}: <{tag} {attr}={value}>")
    assert not bad, "external resources:\n" + "\n".join(bad)


@pytest.mark.slow
def test_internal_links_resolve(built_book):
    root = built_book["html"]
    broken = []
    for f in html_files(root):
        for tag, attrs in parse(f).tags:
            for attr in ("href", "src"):
                value = attrs.get(attr)
                if not value or tag == "link" and attrs.get("rel") in ("canonical",):
                    continue
                url = urlsplit(value)
                if url.scheme or value.startswith(("//", "mailto:", "javascript:", "data:")):
                    continue
                target = (f.parent / unquote(url.path)).resolve() if url.path else f
                if not target.exists():
                    broken.append(f"{f.name}: {value}")
                elif url.fragment and target.suffix == ".html" and url.fragment not in parse(target).ids:
                    broken.append(f"{f.name}: {value} (no id {url.fragment!r})")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<script.*?</script>|<style.*?</style>", " ", raw, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


@pytest.mark.slow
def test_the_numbers_are_the_results_numbers(built_book):
    import pandas as pd

    res, root = built_book["results"], built_book["html"]
    summary = pd.read_csv(res / "summary.csv")
    index = _text(root / "index.html")
    assert f"We train {len(summary)} networks" in index
    assert f"{summary['activation'].nunique()} activation functions" in index
    acc = pd.read_csv(res / "stats" / "accuracy.csv")
    results = _text(root / "results.html")
    for exp in summary["experiment"].unique():  # the main experiment's table, then each other experiment's
        relu = acc[(acc["experiment"] == exp) & (acc["activation"] == "relu") & (acc["metric"] == "test_acc")]
        relu = relu.iloc[0]
        cell = f"{100 * relu['mean']:.1f} [{100 * relu['ci_low']:.1f}, {100 * relu['ci_high']:.1f}]"
        assert cell.replace("-", "\u2212") in results, exp
    # every claim got a verdict; a sweep without Leaky ReLU, PReLU or ELU (the tiny one) says what it could not test
    for claim in "abcd":
        assert f"({claim})" in index
    if not {"leaky_relu", "prelu", "elu"} <= set(summary["activation"]):
        assert "not tested" in index
    for page in PAGES:  # the old labels are gone from every page
        text = _text(root / f"{page}.html")
        for word in ("not supported", "not resolved", "partly supported", "half tested"):
            assert word not in text, f"{page}: {word!r}"
    born = pd.read_csv(res / "depth" / "born_dead.csv")
    assert f"{int(born['trials'].max())} networks per cell" in _text(root / "methods.html")
    for page in PAGES:  # no unresolved glue, no Python error output
        text = _text(root / f"{page}.html")
        assert "Traceback" not in text and "glue key" not in text.lower(), page


# -----------------------------------------------------------------------------
# the built book in headless Chromium


def _browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return chromium, driver


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_book(built_book):
    handler = functools.partial(_Quiet, directory=str(built_book["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = _browser_paths()
    if not (chromium and chromedriver):
        pytest.skip(
            "chromium and chromedriver are not installed "
            "(Debian: apt-get install chromium chromium-driver; or `make system`)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # anything but the loopback server fails to resolve: a page that needs the network shows it
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done('typeset')).catch(e => done('error: ' + e));
} else { done('no mathjax'); }
"""

LOAD_IMAGES = """
const done = arguments[arguments.length - 1];
const imgs = [...document.images];
imgs.forEach(i => { i.loading = 'eager'; i.scrollIntoView(); });
Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
  .then(() => { window.scrollTo(0, 0);
                done(imgs.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])); });
"""

PROSE_TEXT = """
const clone = document.querySelector('main, article, body').cloneNode(true);
clone.querySelectorAll('pre, code, script, style, mjx-container, .MathJax').forEach(e => e.remove());
return clone.innerText;
"""


def _screenshot(driver, path: Path, width: int = 1280) -> None:
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 100, 16000))
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 900)


@pytest.mark.slow
def test_every_page_renders_in_chromium(built_book, served_book, browser):
    html_root = built_book["html"]
    shots = built_book["results"] / "screenshots"
    shots.mkdir(exist_ok=True)
    problems = []
    for f in html_files(html_root):
        page = f.stem
        browser.get(f"{served_book}/{f.name}")
        mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
        images = browser.execute_async_script(LOAD_IMAGES)
        for src, complete, width in images:
            if not (complete and width > 0):
                problems.append(f"{page}: image {src} did not load")
        has_math = 'class="math' in f.read_text(encoding="utf-8")
        if has_math:
            n = browser.execute_script("return document.querySelectorAll('mjx-container').length")
            if mathjax != "typeset" or n == 0:
                problems.append(f"{page}: math not typeset (MathJax: {mathjax}, {n} formulas)")
            prose = browser.execute_script(PROSE_TEXT)
            for raw in ("\\(", "\\)", "\\[", "$$", "\\frac", "\\max"):
                if raw in prose:
                    problems.append(f"{page}: raw TeX {raw!r} left in the text")
            if re.search(r"\$[^$\s][^$]*\$", prose):
                problems.append(f"{page}: unparsed $...$ math in the text")
        for entry in browser.get_log("browser"):
            if entry["level"] == "SEVERE":
                problems.append(f"{page}: console: {entry['message']}")
        if page in ("results", "index", "definitions", "methods"):
            _screenshot(browser, shots / f"{page}.png")
    extra = os.environ.get("ACTLAB_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, Path(extra) / png.name)
    assert (shots / "results.png").stat().st_size > 50_000
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_figures_are_the_pipelines_figures(built_book, served_book, browser):
    """The results page shows every figure the pipeline made for it (same pixels, via glue)."""
    browser.get(f"{served_book}/results.html")
    images = browser.execute_async_script(LOAD_IMAGES)
    figures = [src for src, _, _ in images if "_images/" in (src or "")]
    made = sorted((built_book["results"] / "figures").rglob("*.png"))
    n_exp = len({p.parent for p in made} - {built_book["results"] / "figures"})
    n_groups = len({p.parent for p in made if "-" in p.parent.name})  # figures across a dataset/model's experiments
    n_exp -= n_groups
    assert len(figures) == len(made) == 2 + 5 * n_exp + n_groups, (figures, made)  # 2 global, 5 per experiment
    # glue copies the PNG bytes; check the sizes of the served images match the pipeline's files
    served = sorted((built_book["html"] / src.split("?")[0]).stat().st_size for src in figures)
    assert served == sorted(p.stat().st_size for p in made)


# -----------------------------------------------------------------------------
# the PDF (rule book_pdf, `snakemake --cores all pdf`): printed from the built HTML by headless Chromium


@pytest.fixture(scope="module")
def book_pdf(built_book, tmp_path_factory):
    chromium, _ = _browser_paths()
    if not chromium:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; or `make system`)")
    if built_book["work"] is None:  # a book built elsewhere: print it with the rule's script
        pdf = tmp_path_factory.mktemp("pdf") / "actlab.pdf"
        cmd = [sys.executable, str(ROOT / "workflow" / "scripts" / "print_book.py"), str(built_book["html"]), str(pdf)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    else:  # the pipeline's own target, in the tiny sweep's directory: only the PDF is left to make
        work = built_book["work"]
        pdf = built_book["html"].parent / "pdf" / "actlab.pdf"  # beside the sweep's HTML
        sweep = ["--directory", str(work), "--configfile", str(ROOT / "conf" / "sweep" / "test.yaml")]
        cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), *sweep, "--cores", "2", "pdf"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=work)
        out = proc.stderr + proc.stdout
        assert "book_pdf" in out and "rule book:" not in out, out[-3000:]  # the book is not built again
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pdf


def _page_title(page: Path) -> str:
    """'Methods' from '<title>Methods &#8212; ReLU and its variants, measured</title>'."""
    m = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), flags=re.S)
    return " ".join(html.unescape(m.group(1)).split(" \u2014 ")[0].split())


@pytest.mark.slow
def test_the_pdf_has_every_page_in_reading_order_with_typeset_math(built_book, book_pdf):
    import unicodedata

    import pandas as pd
    from pypdf import PdfReader

    reader = PdfReader(book_pdf)
    norm = lambda s: " ".join(unicodedata.normalize("NFKC", s).split())  # noqa: E731  ("ﬁ" -> "fi")
    text = [norm(p.extract_text()) for p in reader.pages]
    # one bookmark per page of the book, in the order of _toc.yml, each on the page its chapter starts
    titles = [_page_title(built_book["html"] / f"{page}.html") for page in PAGES]
    marks = [(m["/Title"], reader.get_destination_page_number(m)) for m in reader.outline]
    assert [t for t, _ in marks] == titles
    starts = [n for _, n in marks]
    assert starts == sorted(starts) and len(set(starts)) == len(PAGES) and len(reader.pages) > len(PAGES)
    for title, n in marks:
        assert title in text[n], f"page {n + 1} of the PDF should open {title!r}: {text[n][:200]!r}"
    # the numbers are there, and MathJax typeset every formula: no TeX source left in the text
    index = " ".join(text[starts[0] : starts[1]])
    assert f"We train {len(pd.read_csv(built_book['results'] / 'summary.csv'))} networks" in index
    whole = " ".join(text)
    for raw in ("\\(", "\\)", "\\[", "\\]", "$$", "\\frac", "\\max", "\\lVert"):
        assert raw not in whole, f"raw TeX {raw!r} in the PDF"
    # every figure the pipeline made is printed (results page), and nothing else is missing an image
    made = list((built_book["results"] / "figures").rglob("*.png"))
    assert sum(len(p.images) for p in reader.pages) >= len(made)
    print(f"PDF: {len(reader.pages)} pages, {book_pdf.stat().st_size / 1e6:.1f} MB")


@pytest.mark.slow
def test_each_verdict_names_its_data_and_model_and_follows_its_rule(built_book, monkeypatch):
    """The verdict table of the first page: one row per claim, its label from the vocabulary, and
    the data and model it rests on; the labels are the ones the rules give on these results."""
    import pandas as pd

    monkeypatch.setenv("ACTLAB_RESULTS", str(built_book["results"]))
    try:
        importlib.reload(bd)
        claims = importlib.reload(_claims())
        verdicts = claims.all_claims()
        index = (built_book["html"] / "index.html").read_text(encoding="utf-8")
        table = index[index.index("<table") : index.index("</table>")]
        rows = re.findall(r"<tr.*?</tr>", table, flags=re.S)[1:]  # the header row first
        assert len(rows) == len(verdicts) == 4
        for row, (key, v) in zip(rows, verdicts.items()):
            cells = [
                " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                for c in re.findall(r"<td.*?</td>", row, flags=re.S)
            ]
            assert cells[0] == f"({key})" and cells[2] == v.rests_on and cells[3].startswith(v.label), cells
            assert v.label in claims.labels() and all(lab in claims.labels() for _, lab in v.parts)
        exp = bd.experiments()[0]
        assert verdicts["b"].rests_on.startswith(bd.dataset_name(bd.experiment_info(exp)["dataset"]))
        assert "×" in verdicts["b"].rests_on
        # claim (a) is about MNIST: without full MNIST it rests on the MNIST subset, named as a subset
        # (the tiny sweep has one, beside the main MNIST-1D experiment), else on the main experiment
        datasets = {bd.experiment_info(e)["dataset"] for e in bd.experiments()}
        if built_book["work"] is not None:
            assert datasets == {"mnist1d", "mnist_subset"}, datasets
        if "mnist" not in datasets and "mnist_subset" in datasets:
            assert verdicts["a"].rests_on.startswith(bd.dataset_name("mnist_subset") + ", "), verdicts["a"].rests_on
            assert "subset" in verdicts["a"].basis, verdicts["a"].basis
        elif "mnist" not in datasets:
            assert verdicts["a"].rests_on == claims.rests_on(exp)
        # claim (c) by its rule, from the table itself
        he = claims.born_dead_relu()
        w0 = min(w for w in he["width"].unique() if w >= 2)
        narrow = he[he["width"] == w0].sort_values("depth")
        deep, shallow = narrow.iloc[-1], narrow.iloc[0]
        if deep["ci_low"] >= bd.OFTEN and deep["ci_low"] > shallow["ci_high"]:
            assert verdicts["c"].label == "supported"
        elif deep["ci_high"] < bd.OFTEN:
            assert verdicts["c"].label == "contradicted"
        else:
            assert verdicts["c"].label.startswith("cannot be decided")
        # claim (d) by its rule, from the timing table
        t = pd.read_csv(built_book["results"] / "stats" / "timing.csv").set_index("activation")
        smooth = claims.smooth_activations(t.index)
        lows, highs = t.loc[smooth, "ratio_ci_low"], t.loc[smooth, "ratio_ci_high"]
        if (lows > bd.NOTICEABLE).all():
            assert verdicts["d"].label == "supported"
        elif ((lows <= bd.NOTICEABLE) & (highs >= bd.NOTICEABLE)).any():
            assert verdicts["d"].label == "cannot be decided (straddles the threshold)"
        else:
            assert verdicts["d"].label == "contradicted"
    finally:
        monkeypatch.undo()
        importlib.reload(bd)
        importlib.reload(_claims())


TABLES_OVERFLOWING = """
return [...document.querySelectorAll('.pst-scrollable-table-container, table')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => (e.querySelector('th') || e).innerText.slice(0, 40));
"""


@pytest.mark.slow
def test_tables_fit_the_printed_page(built_book, served_book, browser):
    """Paper cannot scroll: printed (the PDF), a wide table must shrink to the page, not be cut off
    (paper/_static/actlab.css, @media print). Checked at the width of a Letter page's text."""
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.set_window_size(760, 1000)  # 8.5 in minus Chromium's default print margins, at 96 px/in
        cut = {}
        for f in html_files(built_book["html"]):
            browser.get(f"{served_book}/{f.name}")
            browser.execute_async_script(WAIT_FOR_MATHJAX)
            if over := browser.execute_script(TABLES_OVERFLOWING):
                cut[f.stem] = over
        assert not cut, f"tables wider than the printed page: {cut}"
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        browser.set_window_size(1280, 900)

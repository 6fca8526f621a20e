"""QuAIL news questions over a pool of BBC + VOA + seed articles: is the gold article first?

    python benchmarks/quail.py convert [--out DIR]
    python benchmarks/quail.py run [--base-index /tmp/bbc-bench2] [--work-dir DIR]
                                   [--split test|dev|all] [--json] [--plot FILE.png]

`convert` turns ../shared/corpus/quail-news/quail_dev_news.json into `articles.jsonl` (the 30
Voice of America texts in the project's article shape) and `questions.jsonl` (the
`coverbot eval` question shape). QuAIL is CC BY-NC-SA and for evaluation only, so both files
are written outside the repository (default /tmp/coverbot-quail) and never committed.

`run` converts, copies the serving generation of an existing BBC + seed index (built by
bbc_import_eval.py; the original is never opened, since opening a store may upgrade it) once
into WORK_DIR/index, imports the 30 VOA texts into the copy (only they are embedded; a second
run embeds nothing), then runs `coverbot eval --baselines` on it.

What goes into the question set, and why:

- Factual and Character_identity questions (60 each) are answerable: `url` is the gold text's
  URL passed through `canonical_url`, the same function the importer applies to the article.
  It keeps the path as it is, so the source's doubled slash (`voanews.com//a/...`) is kept
  on both sides and they match.
- QuAIL answers are multiple-choice options written by annotators, often reworded
  ("Undocumented immigrants", "Mitch McConell"). `any_of` holds the option only when it
  appears in the text (case-insensitively, as the scorer compares, final period dropped):
  73 of 120. The others can never count as a fact found, so fact@k has a ceiling of about
  61%, and short names that recur in a text ("Trump", 8 times) make it lenient. `style`
  tells the two kinds apart (`Factual:literal`, `Factual:reworded`, ...), so `--json`'s
  by-style fact@1 gives the literal ones alone. The metric that counts here is
  **article@1**: the gold VOA text is the first excerpt's article, among 2,256.
- Unanswerable questions (60) ask about a text's subject what the text never says ("What
  did Mitch McConnell eat for breakfast Thursday?"). That is the project's `url: null`, "the
  coverage does not answer" (the BBC set's hardest unanswerable kind: retrieval finds the
  topic), and BBC 2004-05 news cannot answer them either, so they go in with `url: null`
  and style `Unanswerable`. They count only in "declined" and "decline precision"; fact,
  article and answered are over the answerable questions alone.
- The six other types (causality, belief states, temporal order, event duration, ...) ask
  for inferences that no single sentence states; a bot that quotes cannot answer them, so
  they are left out.
- QuAIL has no split of its own: texts alternate dev/test in id order (15 each). Baselines
  calibrate their decline threshold on QuAIL dev; coverbot keeps its configured threshold
  (calibrated on BBC dev), so the test split is held out for every system.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from index import layout
from index.articles import canonical_url, clean_text

ROOT = Path(__file__).resolve().parent.parent
QUAIL = ROOT.parent / "shared" / "corpus" / "quail-news" / "quail_dev_news.json"
ANSWERABLE_TYPES = ("Factual", "Character_identity")
UNANSWERABLE_TYPE = "Unanswerable"
DEFAULT_WORK = Path("/tmp/coverbot-quail")


def literal_answer(answer: str, body: str) -> str | None:
    """The answer option as it can be found in the text, or None when it is reworded."""
    phrase = answer.strip().rstrip(".").strip()
    return phrase if phrase and phrase.lower() in body.lower() else None


def text_splits(text_ids: list[str]) -> dict[str, str]:
    """Alternate dev/test over the texts in id order, so both halves span the set."""
    return {tid: ("dev" if i % 2 == 0 else "test") for i, tid in enumerate(sorted(text_ids))}


def article_record(text: dict[str, Any]) -> dict[str, Any]:
    """A QuAIL text in the project's article shape; VOA texts carry no date."""
    return {
        "url": canonical_url(text["url"]),
        "title": text["title"],
        "body": text["body"],
        "published_at": None,
        "author": text.get("author") or None,
        "source": "Voice of America (QuAIL)",
        "id": f"quail-{text['id']}",
    }


def question_record(q: dict[str, Any], text: dict[str, Any], split: str) -> dict[str, Any]:
    """A QuAIL question in the `coverbot eval` shape (see the module docstring)."""
    record: dict[str, Any] = {"id": f"quail-{q['id']}", "question": q["question"]}
    if q["question_type"] == UNANSWERABLE_TYPE:
        return {**record, "url": None, "any_of": [], "style": UNANSWERABLE_TYPE, "split": split}
    phrase = literal_answer(q["answer"], clean_text(text["body"]))
    return {
        **record,
        "url": canonical_url(text["url"]),
        "any_of": [phrase] if phrase else [],
        "style": f"{q['question_type']}:{'literal' if phrase else 'reworded'}",
        "split": split,
        "answer": q["answer"],
    }


def convert(source: Path, out: Path) -> tuple[Path, Path]:
    """Write the articles and questions files under `out`; returns their paths."""
    if out.resolve().is_relative_to(ROOT):
        sys.exit(f"{out}: QuAIL is evaluation-only (CC BY-NC-SA); write outside the repository")
    data = json.loads(source.read_text(encoding="utf-8"))
    texts = {t["id"]: t for t in data["texts"]}
    splits = text_splits(list(texts))
    questions = [
        question_record(q, texts[q["text_id"]], splits[q["text_id"]])
        for q in data["questions"]
        if q["question_type"] in (*ANSWERABLE_TYPES, UNANSWERABLE_TYPE)
    ]
    out.mkdir(parents=True, exist_ok=True)
    articles_path, questions_path = out / "articles.jsonl", out / "questions.jsonl"
    write_jsonl(articles_path, [article_record(t) for t in texts.values()])
    write_jsonl(questions_path, questions)
    styles = Counter(q["style"] for q in questions)
    print(f"{len(texts)} articles -> {articles_path}", file=sys.stderr)
    print(
        f"{len(questions)} questions -> {questions_path}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(styles.items())),
        file=sys.stderr,
    )
    return articles_path, questions_path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def coverbot(*args: str) -> None:
    """Run the `coverbot` CLI of this checkout in a child process; stop on failure."""
    subprocess.run([sys.executable, "-m", "bot.cli", *args], check=True)


def run(args: argparse.Namespace) -> None:
    """Copy the base index, import the VOA texts into the copy, evaluate on it."""
    base, work = args.base_index.resolve(), args.work_dir.resolve()
    generation = layout.serving_generation(base)
    if generation is None:
        sys.exit(f"{base}: not an index (no CURRENT); build it with benchmarks/bbc_import_eval.py")
    articles, questions = convert(args.source, work)
    index = work / "index"
    if layout.serving_generation(index) is None:
        print(f"copying {base / generation} -> {index}", file=sys.stderr)
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(base / generation, index / generation)
        layout.switch_to(index, generation)
    coverbot("--data-dir", str(index), "import", str(articles))
    evaluate = ["--data-dir", str(index), "eval", "--questions", str(questions), "--baselines"]
    evaluate += ["--split", args.split] + (["--json"] if args.json else [])
    coverbot(*evaluate, *(["--plot", str(args.plot)] if args.plot else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=QUAIL, help="quail_dev_news.json")
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="write articles.jsonl and questions.jsonl")
    conv.add_argument("--out", type=Path, default=DEFAULT_WORK)
    ev = commands.add_parser("run", help="import into a copy of the BBC index and evaluate")
    ev.add_argument("--base-index", type=Path, default=Path("/tmp/bbc-bench2"))
    ev.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    ev.add_argument("--split", choices=("all", "dev", "test"), default="test")
    ev.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    ev.add_argument("--plot", type=Path, default=None, help="also write a PNG chart")
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.source, args.out)
    else:
        run(args)


if __name__ == "__main__":
    main()

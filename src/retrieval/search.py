"""``python -m src.retrieval.search "query" --k 5 [--intent X]``: nearest resolved tickets as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from src.config import get_settings
from src.retrieval.store import KnowledgeBase
from src.retrieval.types import RetrievalUnavailable, SearchResult


def result_to_json(query: str, k: int, result: SearchResult) -> dict[str, object]:
    """JSON-able view of a search (hits keep their ``fallback`` marks)."""
    return {
        "query": query,
        "k": k,
        "filtered": result.filtered,
        "fallback_used": result.fallback_used,
        "hits": [h.model_dump(mode="json") for h in result],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.retrieval.search",
        description="Search the resolved-ticket knowledge base and print the hits as JSON.",
    )
    parser.add_argument("query", help="ticket text to search with")
    parser.add_argument("--k", type=int, default=None, help="number of hits (default TRIAGE_RETRIEVAL_K)")
    parser.add_argument("--intent", default=None, help="only this intent (unfiltered top-up if too few)")
    parser.add_argument("--category", default=None, help="only this category (unfiltered top-up if too few)")
    parser.add_argument("--min-score", type=float, default=None, help="minimum cosine similarity")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    k = settings.retrieval_k if args.k is None else args.k
    if k < 1:
        print("error: --k must be >= 1", file=sys.stderr)
        return 2
    if not args.query.strip():
        print("error: the query is empty", file=sys.stderr)
        return 2
    try:
        result = KnowledgeBase.from_settings(settings).search(
            args.query, k=k, intent=args.intent, category=args.category, min_score=args.min_score
        )
    except RetrievalUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result_to_json(args.query, k, result), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

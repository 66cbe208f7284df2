"""LLM judge cost per 1,000 sampled spans: the real judge scorer over stored RAG traces, against a
local stand-in for the provider's endpoint that records each prompt the judge sends.

    python bench/judge_cost.py [--traces 500] [--model gpt-4o-mini] [--no-prefilter]

The traces are scorer_bench.py's (a passage of 4 sentences, a question, an answer, 80% grounded).
The stand-in is the only fake: it answers every prompt with a short verdict and reports usage as
the judge itself estimates tokens (characters / 4), since no tokenizer runs here; a provider's
tokenizer counts somewhat differently. Prices come from the price table Driftline uses for spans
(genai-prices, with any overrides). Prints calls, tokens and USD per 1,000 sampled LLM spans, with
the reply at its real length and at the judge's reply cap (the most it can cost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scorer_bench's traces

from prometheus_client import CollectorRegistry
from scorer_bench import rag_request

from driftline.collector.service import CollectorService
from driftline.config import UpSettings, load_settings
from driftline.pricing import Pricer
from driftline.scorers import judge as judge_module
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.judge import HallucinationJudgeScorer, JudgeConfig
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob

REPLY = json.dumps({"verdict": "grounded", "confidence": 0.9, "reason": "The answer restates the context."})


class Provider(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions that records prompt sizes."""

    prompts: list[int] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = "".join(m["content"] for m in body["messages"])
        Provider.prompts.append(len(prompt))
        out = json.dumps({
            "choices": [{"message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(REPLY) // 4},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=500)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--provider", default="openai")
    ap.add_argument("--no-prefilter", action="store_true", help="call the judge on every span (no offline pass)")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = Path(tempfile.mkdtemp(prefix="driftline-judge-bench-"))
    s = load_settings(UpSettings, environ={}, data_dir=data, api_keys="k=bench", grpc_enabled=False)
    rt = CollectorService(s)
    rt.start()
    for chunk in range(0, args.traces, 100):
        req = rag_request(min(100, args.traces - chunk), seed=chunk)
        rt.ingest("bench", req.SerializeToString(), "", "application/x-protobuf", "bench")
    rt.flush(120)

    cfg = JudgeConfig(
        base_url=f"http://127.0.0.1:{server.server_port}/v1",
        model=args.model,
        provider=args.provider,
        budget_tokens_per_hour=10**12,
        budget_usd_per_hour=10.0**9,
        prefilter=not args.no_prefilter,
    )
    judge = HallucinationJudgeScorer(cfg, ScorerMetrics(CollectorRegistry()), offline=OfflineHallucinationScorer())
    result = ScorerJob(judge, rt.store, JobOptions(settle=timedelta(0), max_spans_per_run=10**7)).run_once()
    rt.stop()
    server.shutdown()

    sampled = result.scored  # every applicable LLM span got a score (judged, or decided offline)
    calls = len(Provider.prompts)
    if not sampled:
        print("no span was scored")
        return 1
    tokens_in = sum(Provider.prompts) // 4
    reply_tokens = len(REPLY) // 4
    cap = judge_module._MAX_REPLY_TOKENS
    pricer = Pricer(s.model_prices())
    usd_real, _ = pricer.price(args.provider, args.model, tokens_in, reply_tokens * calls)
    usd_cap, _ = pricer.price(args.provider, args.model, tokens_in, cap * calls)
    if usd_real is None or usd_cap is None:
        print(f"no price known for {args.provider}/{args.model} (price_overrides can add one)")
        return 1
    # Longer contexts cost more: a prompt with its context at the judge's cap (max_context_chars).
    mean_chars = sum(Provider.prompts) / max(calls, 1)
    big_in = int((mean_chars + cfg.max_context_chars) / 4) * calls
    usd_big, _ = pricer.price(args.provider, args.model, big_in, cap * calls)
    per = 1000 / sampled
    print(f"{sampled} LLM spans scored, {calls} judge calls (prefilter {'on' if cfg.prefilter else 'off'})")
    print(f"mean prompt: {sum(Provider.prompts) / max(calls, 1):,.0f} chars (~{tokens_in / max(calls, 1):,.0f} tokens)")
    print(f"per 1,000 sampled spans: {calls * per:,.0f} calls, {tokens_in * per:,.0f} input tokens")
    print(
        f"{args.provider}/{args.model} per 1,000 sampled spans: ${usd_real * per:.4f} "
        f"(reply {reply_tokens} tokens); at most ${usd_cap * per:.4f} (reply at its cap, {cap} tokens)"
    )
    if usd_big is not None:
        print(
            f"with every context at the cap ({cfg.max_context_chars:,} chars, ~{big_in // max(calls, 1):,} tokens a "
            f"prompt) and the reply at its cap: ${usd_big * per:.4f} per 1,000 sampled spans"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

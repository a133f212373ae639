"""Profiling throughput: the batched closed-answer path vs batched greedy ``generate`` with left padding.

Both run side by side in one process on the same model, the same samples and all three modality modes
(both, image-only, text-only), one torch thread by default. The batched path is what ``mint predict`` runs,
``VisionLanguageModel.predict_modes`` over a task's three modes (every answer of the task's answer set
scored by teacher forcing, one prompt pass and one answers pass per batch; each image decoded and
processed once for the modes that show it). The baseline is what a competent user of transformers runs:
the same prompts in batches of the same size, left-padded, through ``model.generate`` greedily for as
many new tokens as the longest answer needs (plus eos), decoded in one call. Further rows: the batched
path one mode at a time (``VisionLanguageModel.predict`` per mode: nothing shared across modes) and, with
``--loop``, ``generate`` one sample at a time.

    python bench/bench_predict.py [--model tiny] [--suite builtin:default] [--per-task 32] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def baseline_loop(vlm, task, samples, mode: str) -> list[str]:
    """One sample at a time: prompt, collate, greedy ``generate``, decode."""
    answers = [str(a) for a in task.answers or []]
    longest = max((len(vlm.answer_ids(a, "x")) for a in answers), default=vlm.max_new_tokens)
    out = []
    with torch.inference_mode():
        for s in samples:
            prompt, images = vlm.build_prompt(task, s, mode)
            batch = vlm.collate([prompt], [images])
            gen = vlm.model.generate(
                **batch,
                max_new_tokens=longest,
                do_sample=False,
                num_beams=1,
                pad_token_id=vlm.pad_token_id,
                eos_token_id=vlm.tokenizer.eos_token_id,
            )
            text = vlm.tokenizer.decode(
                gen[0, batch["input_ids"].shape[1] :], skip_special_tokens=True
            ).strip()
            out.append(text)
    return out


def baseline_batched(vlm, task, samples, mode: str, batch_size: int) -> list[str]:
    """Batches of ``batch_size``: prompts left-padded, greedy ``generate``, one batched decode."""
    answers = [str(a) for a in task.answers or []]
    longest = max((len(vlm.answer_ids(a, "x")) for a in answers), default=vlm.max_new_tokens)
    out: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            built = [vlm.build_prompt(task, s, mode) for s in samples[start : start + batch_size]]
            batch = vlm.collate([p for p, _ in built], [i for _, i in built], padding_side="left")
            gen = vlm.model.generate(
                **batch,
                max_new_tokens=longest,
                do_sample=False,
                num_beams=1,
                pad_token_id=vlm.pad_token_id,
                eos_token_id=vlm.tokenizer.eos_token_id,
            )
            texts = vlm.tokenizer.batch_decode(
                gen[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
            )
            out.extend(t.strip() for t in texts)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--suite", default="builtin:default")
    ap.add_argument("--per-task", type=int, default=32, help="test samples per task")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2, help="best of N timings for each path")
    ap.add_argument("--loop", action="store_true", help="also time generate one sample at a time")
    ap.add_argument("--out", default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    from mint.models import MODES, load_model
    from mint.tasks import load_suite

    tasks = [t for t in load_suite(args.suite, max_test=args.per_task) if t.answers]
    vlm = load_model(args.model)
    n = sum(len(t.test) for t in tasks) * len(MODES)

    def timed(fn) -> tuple[float, list[list[str]]]:
        """Best of ``--repeats`` wall times of ``fn(task) -> {mode: answers}`` over all tasks."""
        best, preds = float("inf"), []
        for _ in range(args.repeats):
            start = time.perf_counter()
            per_task = [fn(t) for t in tasks]
            best = min(best, time.perf_counter() - start)
            preds = [p[m] for p in per_task for m in MODES]
        return best, preds

    load_before = os.getloadavg()[0]
    batched_s, batched = timed(
        lambda t: vlm.predict_modes(t, t.test, MODES, batch_size=args.batch_size, progress=False)
    )
    gen_s, generated = timed(
        lambda t: {m: baseline_batched(vlm, t, t.test, m, args.batch_size) for m in MODES}
    )
    per_mode_s, _ = timed(
        lambda t: {m: vlm.predict(t, t.test, m, batch_size=args.batch_size, progress=False) for m in MODES}
    )
    loop_s = None
    if args.loop:
        loop_s, _ = timed(lambda t: {m: baseline_loop(vlm, t, t.test, m) for m in MODES})
    same = sum(a == b for xs, ys in zip(batched, generated) for a, b in zip(xs, ys)) / n
    result = {
        "model": args.model,
        "suite": args.suite,
        "tasks": len(tasks),
        "samples_x_modes": n,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "batched_samples_per_s": round(n / batched_s, 1),
        "generate_batched_samples_per_s": round(n / gen_s, 1),
        "speedup": round(gen_s / batched_s, 2),
        "same_answer_fraction": round(same, 3),
        "one_mode_at_a_time_speedup": round(gen_s / per_mode_s, 2),
    }
    if loop_s is not None:
        result["generate_loop_speedup"] = round(loop_s / batched_s, 2)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1 min)"
    )
    print(f"{n} sample-modes over {len(tasks)} tasks, {args.threads} thread(s), batches of {args.batch_size}")
    print(
        f"mint scoring over batched generate (left padding): {result['speedup']:.2f}x "
        f"(same answer on {same:.1%} of samples)"
    )
    print(
        f"mint scoring one mode at a time over batched generate: {result['one_mode_at_a_time_speedup']:.2f}x "
        "(VisionLanguageModel.predict per mode: nothing shared across modes)"
    )
    if loop_s is not None:
        print(f"mint scoring over generate one sample at a time: {result['generate_loop_speedup']:.2f}x")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()

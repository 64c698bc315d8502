"""The report: the table the README quotes, the ratios within the run, and the issues' targets.

Every figure is read from the results :func:`scripts.benchmark.run` returns (what --json writes):
the machine, one line per stage with its parts, each stage against the engine's own bulk path, the
engines side by side (--compare-db), the refresh beside the full run, ours beside implicit's ALS,
the serve stage's latencies, the scaling series, and the targets.
"""

from __future__ import annotations

from typing import Any

from scripts.benchmarking.stages import COMPARED_STAGES, IMPLICIT_PARAMS, STAGES, TOP_N, WHAT

# The issues' targets: (users at least, users at most) -> limits of the score stage
TARGETS = (
    {"users": (1, 100_000), "seconds": 60.0, "peak_gib": 4.0, "text": "up to 100,000 users"},
    {"users": (1_000_000, None), "seconds": None, "peak_gib": 8.0, "text": "1,000,000 users"},
)

# ... and of the refresh (issue 12): from this many users, at most this share of the full run's seconds
REFRESH_TARGET = {"users": 100_000, "share": 0.10}


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets that apply to this size: the score stage's seconds and memory, the refresh's share."""
    stages, users = results["stages"], results["config"]["users"]
    score, refreshed = stages.get("score"), stages.get("refresh")
    if score is None:
        return []
    checks = []
    for target in TARGETS:
        low, high = target["users"]
        if users < low or (high is not None and users > high):
            continue
        what = f"score + write-back, {target['text']}"
        if target["seconds"] is not None:
            checks.append(_check(f"{what}: seconds", target["seconds"], score["seconds"]))
        checks.append(
            _check(f"{what}: peak RSS GiB", target["peak_gib"], round(score["peak_rss_mib"] / 1024, 2))
        )
    if refreshed and "ratio_to_score" in refreshed and users >= REFRESH_TARGET["users"]:
        what = f"refresh of {refreshed['n_users']:,} changed customers / full score run, {users:,} users"
        checks.append(
            _check(f"{what}: share of seconds", REFRESH_TARGET["share"], refreshed["ratio_to_score"])
        )
    return checks


def _check(what: str, limit: float, measured: float) -> dict[str, Any]:
    return {"what": what, "limit": limit, "measured": measured, "met": measured <= limit}


def format_report(results: dict[str, Any]) -> str:
    """The table the README quotes: machine, data, stages with their parts, comparisons, targets."""
    config, stages = results["config"], results["stages"]
    compare = results.get("compare")
    lines = _machine_lines(results)
    lines += _stage_table(stages, results.get("skipped", {}))
    lines += _native_ratios(stages, config["engine"])
    if compare:
        lines += ["", f"the same files on {compare['engine']} ({compare['database']}):"]
        lines += _stage_table(compare["stages"], {})
        lines += _native_ratios(compare["stages"], compare["engine"])
        lines += _engine_ratios(config["engine"], stages, compare["engine"], compare["stages"])
    lines += _refresh_lines(stages)
    if compare:
        lines += _refresh_lines(compare["stages"], f" on {compare['engine']}")
    lines.append("")
    lines += _comparison(stages)
    lines += _serve_lines(stages)
    lines += _scaling_lines(results.get("scaling"))
    lines += _target_lines(results.get("targets"))
    lines += [
        "",
        "peak RSS: maximum resident memory of the stage's own process (a fresh child per stage, imports",
        "included); the PostgreSQL server's memory is not counted. score: 'scoring (not overlapped)' is",
        "the time spent waiting for the scoring threads beyond the time spent writing, which overlaps it.",
        "CPU s: user + system seconds of the stage's threads and worker processes (imports excluded);",
        "others: share of the machine's cores that other processes (the PostgreSQL server included) used",
        "during the stage; seconds taken at a high share are pessimistic (CPU s are steadier).",
    ]
    return "\n".join(lines)


def _machine_lines(results: dict[str, Any]) -> list[str]:
    """The date, the machine and its load, the data and the database."""
    machine, config, stages = results["machine"], results["config"], results["stages"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        f"Benchmark {machine['date']}",
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM,"
        f" {machine['os']}",
        f"         {versions}" + (f", PostgreSQL {machine['postgresql']}" if "postgresql" in machine else ""),
        "         load average (1/5/15 min) at start {}, at end {}".format(
            machine.get("load_average_start"), machine.get("load_average_end")
        ),
    ]
    generated = stages.get("generate", {}).get("counts", {})
    interactions = generated.get("interactions", config["interactions"])
    lines.append(
        f"data: {config['users']:,} users x {config['shoes']:,} shoes, {interactions:,} interactions"
        + ("" if generated else " (requested)")
        + f"; database: {config['engine']} ({config['database']})"
    )
    matrix = (stages.get("model") or stages.get("implicit") or {}).get("matrix")
    pairs = matrix["nonzeros"] if matrix else stages.get("load", {}).get("interaction_pairs")
    if pairs:
        lines.append(f"      interaction matrix: {pairs:,} nonzero (user, shoe) pairs")
    return [*lines, ""]


def _stage_table(stages: dict[str, Any], skipped: dict[str, str]) -> list[str]:
    """One line per stage (seconds, CPU, peak memory, rows, rate, others' share), then its parts."""
    lines: list[str] = []
    header = (
        f"{'stage':<28}{'seconds':>9}{'CPU s':>9}{'peak RSS':>11}{'rows':>13}{'rows/s':>11}{'others':>8}"
        "   includes"
    )
    lines += [header, "-" * len(header)]
    blank = f"{'':>9}{'':>11}"
    for stage in STAGES:
        if stage not in stages:
            if stage in skipped:
                lines.append(f"{stage:<28}{'skipped':>9}   {skipped[stage]}")
            continue
        outcome = stages[stage]
        rate = outcome.get("rows_per_second")
        lines.append(
            f"{stage:<28}{outcome['seconds']:>9.1f}{outcome.get('cpu_seconds', 0):>9.1f}"
            f"{_mem(outcome['peak_rss_mib']):>11}{_n(outcome.get('rows')):>13}{_n(rate):>11}"
            f"{_share(outcome.get('others_cpu_share')):>8}   {WHAT[stage]}"
        )
        if outcome.get("tree_peak_rss_mib", 0) > outcome["peak_rss_mib"] * 1.05:
            tree = _mem(outcome["tree_peak_rss_mib"])
            lines.append(f"{'  (with worker processes)':<28}{'':>9}{'':>9}{tree:>11}")
        for part, seconds in outcome.get("parts", {}).items():
            extra = ""
            if stage == "score" and part == "write":
                extra = f"{_n(outcome.get('rows')):>13}{_n(rate):>11}{'':>8}   rows of the three score tables"
            elif stage == "load" and part == "load":
                extra = f"{_n(outcome.get('rows')):>13}{_n(rate):>11}{'':>8}   rows read from the three files"
            lines.append(f"{'  ' + _parts_label(stage, part):<28}{seconds:>9.1f}{blank}{extra}".rstrip())
    return lines


def _refresh_lines(stages: dict[str, Any], where: str = "") -> list[str]:
    """The refresh beside the full run: what changed, how long each took, the share."""
    refreshed = stages.get("refresh")
    if not refreshed:
        return []
    lines = [
        "",
        f"refresh beside the full run{where} (python -m scripts.score --refresh, a process of its own):",
    ]
    delivery = refreshed.get("changes")
    if delivery:
        changes = delivery["changes"]
        lines.append(
            f"  the delivery: {changes['customers']:,} customers changed ({changes['existing_customers']:,}"
            f" returning with {changes['events'] - changes['events_of_new']:,} new events,"
            f" {changes['new_customers']:,} brand-new with {changes['events_of_new']:,}), loaded by"
            f" scripts.load in {delivery['parts']['load']:.1f} s (not in the refresh's seconds)"
        )
    lines.append(
        f"  refresh: {refreshed['n_users']:,} customers, {refreshed['rows']:,} rows in"
        f" {refreshed['seconds']:.2f} s (CPU {refreshed.get('cpu_seconds', 0):.1f} s)"
    )
    if "ratio_to_score" in refreshed:
        score = stages["score"]
        cpu = refreshed.get("cpu_ratio_to_score")
        lines.append(
            f"  full score stage: {score['seconds']:.1f} s (CPU {score.get('cpu_seconds', 0):.1f} s)"
            f" -> refresh / full run: {refreshed['ratio_to_score']:.1%} of the seconds"
            + (f", {cpu:.1%} of the CPU seconds" if cpu is not None else "")
        )
    else:
        lines.append("  no score stage in this run to set it beside")
    return lines


def _percent(ours: float | None, native: float | None) -> str:
    return f"{ours / native:.0%}" if ours and native else "n/a"


def _native_ratios(stages: dict[str, Any], engine: str) -> list[str]:
    """Each stage against the engine's own bulk path measured in the same run (ours / native)."""
    native = stages.get("native")
    if not native:
        return []
    rates, parts = native["rates"], native["parts"]
    read_path = "raw COPY into unlogged tables" if engine == "postgres" else "read_csv with typed columns"
    export_path = "COPY (select ...) TO STDOUT" if engine == "postgres" else "an Arrow fetch"
    write_path = "raw COPY FROM a CSV file" if engine == "postgres" else "insert from read_csv"
    lines = ["", f"against {engine}'s own bulk paths in this run (throughput, ours / native):"]
    load = stages.get("load")
    if load:
        lines.append(
            f"  load: {_n(load['rows_per_second'])} rows/s; {read_path}: {_n(rates['read'])} rows/s"
            f" -> {_percent(load['rows_per_second'], rates['read'])}"
        )
    score = stages.get("score")
    if score:
        read = score["parts"].get("read")
        lines.append(
            f"  score, read: {_n(read, 2)} s (views to arrays); {export_path} of the matrix query:"
            f" {_n(parts['export'], 2)} s -> {_percent(parts['export'], read)}"
        )
        if rates.get("write"):
            ours = score["rows_per_second"]
            lines.append(
                f"  score, write-back: {_n(ours)} rows/s; {write_path} of the run's recommendations:"
                f" {_n(rates['write'])} rows/s -> {_percent(ours, rates['write'])}"
            )
    return lines


def _engine_ratios(engine: str, stages: dict[str, Any], other: str, others: dict[str, Any]) -> list[str]:
    """The compared engine's seconds over the main engine's, stage by stage and for the score's parts."""
    lines = ["", f"{other} / {engine}, same files, same run (seconds; 1.00x = as fast):"]
    for stage in COMPARED_STAGES:
        if stage in stages and stage in others:
            mine, theirs = stages[stage]["seconds"], others[stage]["seconds"]
            lines.append(f"  {stage:<24}{theirs:>9.1f} / {mine:.1f} s = {theirs / mine:.2f}x")
    if "score" in stages and "score" in others:
        for part in ("read", "write", "score"):
            mine, theirs = stages["score"]["parts"].get(part), others["score"]["parts"].get(part)
            if mine and theirs:
                lines.append(
                    f"  {'  score, ' + part:<24}{theirs:>9.1f} / {mine:.1f} s = {theirs / mine:.2f}x"
                )
    return lines


def _comparison(stages: dict[str, Any]) -> list[str]:
    """Ours and implicit's ALS side by side, part by part."""
    ours = stages.get("model")
    als = stages.get("implicit")
    if not als or not (ours or stages.get("score")):
        return []
    # the model stage (in memory, no write), else the score stage's parts, writing left out where it can be
    outcome = ours or stages["score"]
    mine = outcome["parts"]
    ours_fit = mine.get("fit", 0) + mine.get("similarities", 0) + mine.get("segments", 0)
    ours_rec = mine["recommend"] if ours else mine.get("score", 0)
    ours_read, ours_total, ours_peak = mine.get("read", 0), outcome["seconds"], outcome["peak_rss_mib"]
    ours_cpu = outcome.get("cpu_seconds", 0.0)
    source = (
        "model stage (in memory, no write)"
        if ours
        else "score stage (recommend = scoring not overlapped with writing)"
    )
    used = outcome.get("parameters", {})
    parts = als["parts"]
    rows = [
        ("export interaction matrix", ours_read, parts["read"]),
        ("fit", ours_fit, parts["fit"]),
        (f"top-{TOP_N} for every user", ours_rec, parts["recommend"]),
        ("fit + top-N", ours_fit + ours_rec, parts["fit"] + parts["recommend"]),
        ("whole stage", ours_total, als["seconds"]),
        ("whole stage, CPU seconds", ours_cpu, als.get("cpu_seconds", 0.0)),
    ]
    lines = [
        f"side by side on the same matrix ({als['matrix']['users']:,} x {als['matrix']['shoes']:,},"
        f" {als['matrix']['nonzeros']:,} nonzeros), seconds:",
        f"{'':<28}{'ours (hybrid)':>15}{'implicit ALS':>15}{'implicit / ours':>17}",
    ]
    for label, mine, theirs in rows:
        ratio = f"{theirs / mine:.2f}x" if mine else ""
        lines.append(f"{label:<28}{mine:>15.1f}{theirs:>15.1f}{ratio:>17}")
    lines.append(f"{'peak RSS':<28}{_mem(ours_peak):>15}{_mem(als['peak_rss_mib']):>15}")
    lines += [
        f"ours: from the {source}.",
        f"  fit = truncated SVD ({used.get('factors_used', '?')} factors, {used.get('svd_iterations', '?')}"
        " power iterations) + TF-IDF + segment cold start + the two shoe x shoe",
        "  Gram matrices + similarities + segment lists; top-N = hybrid scores, per-user scaling,",
        f"  explanations, rows prepared ({used.get('workers', '?')} threads, {used.get('batch_size', '?')}"
        " users a batch); it excludes only the shoes bought.",
        f"implicit: ALS {IMPLICIT_PARAMS['factors']} factors, {IMPLICIT_PARAMS['iterations']} iterations,"
        f" {als['threads']} threads (BLAS 1);",
        "  top-N = factor dot products, excluding every shoe the user touched.",
    ]
    return lines


def _scaling_lines(scaling: list[dict[str, Any]] | None) -> list[str]:
    """The score stage's seconds per 1,000 users at each size of --scaling."""
    if not scaling:
        return []
    lines = [
        "",
        "scaling of the score stage (fresh data and database per size; interactions per user kept):",
        f"{'users':>12}{'seconds':>10}{'s / 1k users':>15}{'CPU s':>9}{'CPU s / 1k':>13}{'peak RSS':>11}"
        f"{'others':>8}",
    ]
    for point in scaling:
        lines.append(
            f"{point['users']:>12,}{point['seconds']:>10.1f}{point['seconds_per_1k_users']:>15.3f}"
            f"{point['cpu_seconds']:>9.1f}{point['cpu_seconds_per_1k_users']:>13.3f}"
            f"{_mem(point['peak_rss_mib']):>11}{_share(point.get('others_cpu_share')):>8}"
        )
    return lines


def _target_lines(targets: list[dict[str, Any]] | None) -> list[str]:
    if not targets:
        return []
    lines = ["", "targets of the issues (score stage; refresh):"]
    for check in targets:
        lines.append(
            f"  {check['what']}: {check['measured']:g} (limit {check['limit']:g}) "
            + ("met" if check["met"] else "MISSED")
        )
    return lines


def _serve_lines(stages: dict[str, Any]) -> list[str]:
    from scripts.serve_bench import format_serve

    outcome = stages.get("serve")
    return ["", format_serve(outcome["serve"])] if outcome and outcome.get("serve") else []


# -- formatting ---------------------------------------------------------------------------------
def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _mem(mib: float | None) -> str:
    if mib is None:
        return ""
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def _parts_label(stage: str, part: str) -> str:
    labels = {
        ("score", "score"): "scoring (not overlapped)",
        ("score", "write"): "write (insert rows)",
        ("score", "read_model"): "read model (PostgreSQL)",
        ("load", "load"): "load (validate..commit)",
        ("refresh", "changed"): "find changed customers",
        ("refresh", "model"): "rebuild the run's model",
        ("refresh", "read"): "read their rows",
        ("refresh", "score"): "score",
        ("refresh", "write"): "write + publish",
        ("refresh", "read_model"): "read model (PostgreSQL)",
    }
    return labels.get((stage, part), part)

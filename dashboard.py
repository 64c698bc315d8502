"""Shoe recommender dashboard: one customer's recommendations and services, and the business view.

    streamlit run dashboard.py

Reads views only, with bound parameters. The database is SHOEREC_DASHBOARD_DB, else SHOEREC_DB,
else the DuckDB file data/shoerec.duckdb, opened read-only with one short connection per query (so a
rebuild is never blocked for long). On PostgreSQL, give it the read-only dashboard role.
Everything shown that a retailer or customer typed (shoe names, care texts) is shown as text.

The page is drawn at the end of this file (title, settings, sidebar, tabs); each tab is one function.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from scripts.db import Database, DatabaseError, describe, engine_of, resolve_url
from scripts.evaluate import BASELINE_MODELS, MODEL_NAMES
from scripts.score import RUN_STAGES

CACHE_SECONDS = 30
TOP_N_SHOWN = 10
HISTORY_SHOWN = 50
CARE_DAYS_AROUND = 120  # care reminders shown: this many days either side of the as-of date
MAX_USERS_IN_PICKER = 20_000
END_OF_LIFE_AHEAD_DAYS = 30  # business_overview.end_of_life_next_30_days_count
STATUS_ICONS = {
    "overdue": "🔴",
    "due": "🟠",
    "upcoming": "⚪",
    "past_end_of_life": "🔴",
    "nearing_end_of_life": "🟠",
    "ok": "🟢",
    "superseded": "⚪",
}
STATUS_LABELS = {"superseded": "superseded by a later reminder"}
# what a customer did, in words (interaction_types rows; any other type is shown with spaces)
INTERACTION_LABELS = {"view": "viewed", "add_to_wishlist": "added to wishlist", "purchase": "bought"}

log = logging.getLogger("dashboard")

# -- page config ------------------------------------------------------------------------------
st.set_page_config(page_title="Shoe recommender", page_icon="👟", layout="wide")

# -- connection -------------------------------------------------------------------------------
DB_URL = os.environ.get("SHOEREC_DASHBOARD_DB") or resolve_url(None)


class Unavailable(RuntimeError):
    """The database cannot be read right now (not built yet, or locked by a rebuild)."""


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _cached_query(url: str, sql: str, params: tuple) -> pd.DataFrame:
    try:
        with Database(url, read_only=True, must_exist=True) as db:
            return db.query_df(sql, list(params) or None)
    except DatabaseError as exc:
        raise Unavailable(str(exc)) from exc


def query(sql: str, *params: object) -> pd.DataFrame:
    """Rows of a query on the views, parameters bound, cached for CACHE_SECONDS."""
    return _cached_query(DB_URL, sql, params)


@dataclass(frozen=True)
class Shop:
    """The settings every tab reads (view current_settings)."""

    reference_date: dt.date
    due_soon_days: int
    currency: str


# -- text -------------------------------------------------------------------------------------
def md(text: object) -> str:
    """User-supplied text made inert for Streamlit markdown: shown exactly as typed."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '')} {STATUS_LABELS.get(status, status.replace('_', ' '))}"


def money(amount: object, currency: str) -> str:
    """A price with the shop's currency (settings.currency): 1,234.50 EUR."""
    return f"{float(amount):,.2f} {currency}"


def model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model.replace("_", " "))


# -- tables: one way to show each column, whichever table it is in -----------------------------
def date_column(label: str) -> dict:
    return st.column_config.DateColumn(label, format="D MMM YYYY")


def share_column(label: str) -> dict:
    return st.column_config.ProgressColumn(label, min_value=0, max_value=1, format="%.2f")


# by column name (the views' names); a table passes its own on top where a name means more there
COLUMNS = {
    "user_id": "Customer",
    "name": "Shoe",
    "brand": "Brand",
    "type": "Type",
    "material": "Material",
    "color": "Colour",
    "rank": st.column_config.NumberColumn("#", width="small"),
    "score": share_column("Score"),
    "status": "Status",
    "life_used_percent": st.column_config.NumberColumn(
        "Life used",
        format="%.0f%%",
        help="Days owned / personal lifespan (catalogue lifespan adjusted for their usage); "
        "over 100% once past its end of life.",
    ),
    "end_of_life_on": date_column("End of life"),
    "purchased_on": date_column("Bought"),
    "personal_lifespan_days": "Lifespan (days)",
    "owned_name": "Replaces",
    "suggested_name": "Suggestion",
    "suggestion_score": share_column("Fit"),
    "reason": "Why",
    "due_on": date_column("Due"),
    "title": "Title",
    "instructions": st.column_config.TextColumn("Instructions", width="large"),
    "occurred_at": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY, HH:mm"),
    "interaction_type": "What",
    "kind": "Kind",
    "days_overdue": "Days overdue",
    "channel": "Channel",
    "time_zone": "Time zone",
    "decision": "Decision",
    "idempotency_key": "Idempotency key",
    "queued_on": date_column("Queued"),
    "sent_on": date_column("Sent"),
    "attempts": "Attempts",
    "last_error": "Last error",
    "messages": "Messages",
    "sent_count": "Sent",
    "complete_count": "Window over",
    "purchase_count": "Bought any",
    "suggested_purchase_count": "Bought suggested",
    "purchase_rate": st.column_config.NumberColumn("Bought any (share)", format="percent"),
    "suggested_purchase_rate": st.column_config.NumberColumn("Bought suggested (share)", format="percent"),
}


def price_column(currency: str) -> dict:
    """A column of prices in the shop's currency (settings.currency)."""
    return st.column_config.NumberColumn(f"Price ({currency})", format="%.2f")


def table(frame: pd.DataFrame, currency: str | None = None, **own: object) -> None:
    """A table of frame: each column shown as COLUMNS says (prices in currency), then as own says."""
    shared = COLUMNS if currency is None else COLUMNS | {"price": price_column(currency)}
    config = {column: shared[column] for column in frame.columns if column in shared} | own
    st.dataframe(frame, hide_index=True, column_config=config)


# -- when a part of the page cannot be shown ---------------------------------------------------
@contextmanager
def section(name: str) -> Iterator[None]:
    """Run one part of the page; if it fails, say so in the page (no traceback) and go on."""
    try:
        yield
    except Unavailable as exc:
        show_unavailable(str(exc))
    except Exception:  # noqa: BLE001 - the visitor gets a message, the log gets the traceback
        log.exception("dashboard section %r failed", name)
        st.error(
            f"Sorry, the {name} part of this page could not be shown. The details are in the server log."
        )


def show_unavailable(reason: str) -> None:
    """The page's answer when there is nothing to read yet: what is wrong and the command to run."""
    if engine_of(DB_URL) == "duckdb" and "no database at" in reason:
        st.info(
            "There is no database yet. Build it from the bundled data (about a minute), then reload:\n\n"
            "```\npython -m scripts.build\n```"
        )
    elif engine_of(DB_URL) == "postgres":
        st.error(postgres_problem(reason) + f"\n\nDatabase: `{describe(DB_URL)}`")
    else:
        st.warning(
            "The database cannot be read right now (it may be being rebuilt). Try again in a moment.\n\n"
            f"Database: `{describe(DB_URL)}`"
        )


def postgres_problem(reason: str) -> str:
    """What is wrong with a PostgreSQL database the page cannot open, in words, with the fix."""
    missing = re.search(r'database "([^"]+)" does not exist', reason)
    if missing:
        name = missing.group(1)
        return (
            f"The PostgreSQL database **{md(name)}** does not exist on that server. Create and build it:\n\n"
            f"```\ncreatedb {name}\npython -m scripts.build --db {describe(DB_URL)}\n```"
        )
    if "Connection refused" in reason or "could not connect" in reason or "timeout expired" in reason:
        return "The PostgreSQL server is not answering at that address: is it running, and is the host and port right?"
    if "authentication failed" in reason or ("role" in reason and "does not exist" in reason):
        return "The PostgreSQL server refused the login: check the user and password in the address."
    last = reason.strip().splitlines()[-1] if reason.strip() else reason
    return f"The PostgreSQL database cannot be read: {md(last.split('FATAL:')[-1].strip())}"


# -- tab: one customer ------------------------------------------------------------------------
def customer_tab(shop: Shop, user_id: int | None, as_of: dt.date) -> None:
    """The picked customer: who they are, their recommendations and messages, shoes, care, history."""
    profile = query("select * from user_profiles where user_id = ?", user_id) if user_id is not None else None
    if profile is None:
        st.info("Pick a customer once there are some.")
        return
    if profile.empty:
        st.warning(f"There is no customer with id {user_id}.")
        return
    person = profile.iloc[0]
    st.subheader(f"Customer {user_id}")
    cols = st.columns(5)
    cols[0].metric("Age", "unknown" if pd.isna(person["age"]) else int(person["age"]))
    cols[1].metric("Gender", str(person["gender"]))
    cols[2].metric("Primary usage", str(person["primary_usage"]))
    cols[3].metric("Shoes looked at", int(person["shoes_interacted"]))
    cols[4].metric("Purchases", int(person["purchase_count"]))
    st.caption(f"Segment: {md(person['segment'])}")

    left, right = st.columns([3, 2], gap="large")
    with left:
        recommendation_cards(shop, user_id, has_no_history=bool(person["has_no_history"]))
    with right:
        messages_for(shop, user_id)
    shoes_and_care(shop, user_id, as_of)
    history(shop, user_id)


def recommendation_cards(shop: Shop, user_id: int, has_no_history: bool) -> None:
    st.markdown("#### Recommended for them")
    recs = query(
        "select rank, name, brand, type, material, color, price, score, behaviour_share, reason, list_source"
        " from user_recommendations where user_id = ? and rank <= ? order by rank",
        user_id,
        TOP_N_SHOWN,
    )
    if recs.empty:
        st.info("No recommendations yet: run `python -m scripts.score` to publish a scoring run.")
    else:
        # where the list comes from: the run, a refresh of it, or (new since the run) the segment
        source = str(recs["list_source"].iloc[0])
        if source == "segment":
            st.caption("New since the last run: showing your segment's list.")
        elif source == "refresh":
            st.caption("New activity since the last run: refreshed with the run's model.")
        elif has_no_history:
            st.caption("No history yet: these are what customers like them choose.")
        cards = st.columns(2)
        for position, rec in enumerate(recs.itertuples()):
            with cards[position % 2].container(border=True):
                st.markdown(f"**{rec.rank}. {md(rec.name)}**")
                st.caption(
                    f"{md(rec.brand)} · {md(rec.type)} · {md(rec.material)} · {md(rec.color)}"
                    f" · {money(rec.price, shop.currency)}"
                )
                behaviour = float(rec.behaviour_share)
                st.progress(
                    min(max(float(rec.score), 0.0), 1.0),
                    text=f"match {rec.score:.2f} · {behaviour:.0%} from behaviour, {1 - behaviour:.0%} from content",
                )
                st.caption(md(rec.reason))

    rules = query("select rule_id, description, note from merchandising_rules_in_force order by rule_id")
    if not rules.empty:
        with st.expander(f"Merchandising rules in force ({len(rules)})"):
            for rule in rules.itertuples():
                st.caption(
                    md(rule.description) + (f" ({md(rule.note)})" if isinstance(rule.note, str) else "")
                )


def messages_for(shop: Shop, user_id: int) -> None:
    st.markdown(f"#### Messages for them on {shop.reference_date:%d %b %Y}")
    messages = query(
        "select kind, message_on, status, title, body from user_messages where user_id = ?"
        " order by message_on desc, message_id",
        user_id,
    )
    if messages.empty:
        st.info("Nothing to tell this customer on the reference date.")
    for message in messages.itertuples():
        with st.container(border=True):
            st.markdown(f"{STATUS_ICONS.get(message.status, '')} **{md(message.title)}**")
            st.caption(f"{message.kind.replace('_', ' ')} · {message.message_on:%d %b %Y}")
            st.text(message.body)


def shoes_and_care(shop: Shop, user_id: int, as_of: dt.date) -> None:
    st.markdown(f"#### Their shoes as of {as_of:%d %b %Y}")
    # the pair in use on that day (a shoe bought twice: the purchase before the day) and its status
    windows = query(
        "select name, status, cast(? - purchased_on as double precision) * 100 / personal_lifespan_days"
        " as life_used_percent,"
        " end_of_life_on, purchased_on, personal_lifespan_days, brand, type"
        " from pair_statuses where user_id = ? and valid_from_on <= ?"
        " and (valid_until_on is null or ? < valid_until_on) order by end_of_life_on",
        as_of,
        user_id,
        as_of,
        as_of,
    )
    if windows.empty:
        st.info(f"No shoes in use on {as_of:%d %b %Y} (purchases up to the reference date count).")
        return
    windows["status"] = windows["status"].map(status_label)
    table(windows)

    suggestions = query(
        "select owned_name, rank, suggested_name, reason, suggestion_score, brand, type, material, price"
        " from replacement_suggestions where user_id = ? order by owned_name, rank",
        user_id,
    )
    if not suggestions.empty:
        st.markdown(
            f"##### Suggested replacements for shoes near the end of their life ({shop.reference_date:%d %b %Y})"
        )
        table(suggestions, shop.currency, reason=st.column_config.TextColumn("Why", width="large"))

    st.markdown(f"#### Care reminders around {as_of:%d %b %Y}")
    care = query(
        "select status, due_on, name, title, instructions from care_reminder_statuses"
        " where user_id = ? and valid_from_on <= ? and ? < valid_until_on and due_on between ? and ?"
        " order by due_on",
        user_id,
        as_of,
        as_of,
        as_of - dt.timedelta(days=CARE_DAYS_AROUND),
        as_of + dt.timedelta(days=CARE_DAYS_AROUND),
    )
    if care.empty:
        st.info(f"No care reminders within {CARE_DAYS_AROUND} days of that date.")
    else:
        care["status"] = care["status"].map(status_label)
        table(care, title="Reminder")


def history(shop: Shop, user_id: int) -> None:
    st.markdown("#### History")
    events = query(
        "select occurred_at, interaction_type, name, brand, type, price from user_history"
        " where user_id = ? order by occurred_at desc limit ?",
        user_id,
        HISTORY_SHOWN,
    )
    if events.empty:
        st.info("No views, wishlists or purchases yet: recommendations come from their segment.")
        return
    events["interaction_type"] = events["interaction_type"].map(
        lambda kind: INTERACTION_LABELS.get(kind, str(kind).replace("_", " "))
    )
    table(events, shop.currency)


# -- tab: a brand-new customer ----------------------------------------------------------------
def new_customer_tab(shop: Shop) -> None:
    """What a newcomer of the chosen segment would be shown (the latest run's segment lists)."""
    st.subheader("What a brand-new customer would see")
    st.caption("From the latest scoring run's segment lists: no scoring happens in this page.")
    segments = query("select distinct primary_usage, gender, age_band from new_customer_recommendations")
    if segments.empty:
        st.info("No scoring run yet: run `python -m scripts.score`.")
        return
    c1, c2, c3 = st.columns(3)
    usage = c1.selectbox("Primary usage", sorted(segments["primary_usage"].unique()))
    gender = c2.selectbox("Gender", sorted(segments["gender"].unique()))
    band = c3.selectbox("Age band", sorted(segments["age_band"].unique()))
    recs = query(
        "select rank, name, brand, type, material, color, price, score from new_customer_recommendations"
        " where primary_usage = ? and gender = ? and age_band = ? and rank <= ? order by rank",
        usage,
        gender,
        band,
        TOP_N_SHOWN,
    )
    table(recs, shop.currency)


# -- tab: business overview -------------------------------------------------------------------
def business_tab(shop: Shop) -> None:
    """Key figures, the latest scoring run and how good the model is, at the reference date."""
    overview = query("select * from business_overview").iloc[0]
    st.subheader(f"Business overview as of {pd.Timestamp(overview['reference_date']):%d %b %Y}")
    row1 = st.columns(4)
    row1[0].metric("Customers", f"{int(overview['user_count']):,}")
    row1[1].metric("Shoes in the catalogue", f"{int(overview['shoe_count']):,}")
    row1[2].metric("Interactions", f"{int(overview['interaction_count']):,}")
    row1[3].metric("Purchases", f"{int(overview['purchase_count']):,}")
    row2 = st.columns(5)
    row2[0].metric(f"Care due (next {shop.due_soon_days} days)", f"{int(overview['reminders_due_count']):,}")
    row2[1].metric("Care overdue", f"{int(overview['reminders_overdue_count']):,}")
    row2[2].metric(
        "Shoes nearing end of life",
        f"{int(overview['nearing_end_of_life_count']):,}",
        help="Replacement window open, end of life still ahead.",
    )
    row2[3].metric(
        f"End of life in the next {END_OF_LIFE_AHEAD_DAYS} days",
        f"{int(overview['end_of_life_next_30_days_count']):,}",
    )
    row2[4].metric("Shoes past end of life", f"{int(overview['past_end_of_life_count']):,}")
    latest_run()
    model_quality()


def latest_run() -> None:
    st.markdown("#### Latest model run")
    run = query("select * from latest_model_run")
    if run.empty:
        st.info("No scoring run has been published yet: run `python -m scripts.score`.")
        return
    latest = run.iloc[0]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Run", int(latest["run_id"]))
    c2.metric("Finished (UTC)", f"{pd.Timestamp(latest['finished_at']):%d %b %H:%M}")
    c3.metric("Duration", f"{float(latest['duration_seconds']):.1f} s")
    c4.metric("Recommendations", f"{int(latest['n_recommendations']):,}")
    timings = json.loads(latest["timings"] or "{}")
    stages = {stage: timings[stage] for stage in RUN_STAGES if stage in timings}
    if stages:
        st.caption("Seconds per stage, in run order")
        st.bar_chart(
            pd.DataFrame({"stage": list(stages), "seconds": list(stages.values())}),
            x="stage",
            y="seconds",
            horizontal=True,
            sort=False,
        )
    with st.expander("Parameters of this run"):
        st.json(json.loads(latest["parameters"]))


def with_interval(row: pd.Series) -> str:
    """A figure with its 95% interval, where it has one: 0.339 (95% interval 0.314 to 0.362)."""
    if pd.isna(row["ci_low"]) or pd.isna(row["ci_high"]):
        return f"{row['value']:.3f}"
    return f"{row['value']:.3f} (95% interval {row['ci_low']:.3f} to {row['ci_high']:.3f})"


def compared(mine: pd.Series, best: pd.Series) -> str:
    """How mine stands against best: better or worse only where the 95% intervals do not overlap."""
    if not pd.isna(mine["ci_low"]) and not pd.isna(best["ci_high"]) and mine["ci_low"] > best["ci_high"]:
        return "better than"
    if not pd.isna(mine["ci_high"]) and not pd.isna(best["ci_low"]) and mine["ci_high"] < best["ci_low"]:
        return "worse than"
    return "not distinguishable from"


def model_quality() -> None:
    st.markdown("#### How good is the model?")
    quality = query(
        "select model, user_group, k, metric, value, ci_low, ci_high, n_users, cutoff_date, protocol"
        " from model_evaluations"
    )
    if quality.empty:
        st.info("No offline evaluation yet: run `python -m scripts.evaluate`.")
        return
    cutoff = pd.Timestamp(quality.at[0, "cutoff_date"])
    if quality.at[0, "protocol"] == "user":
        st.caption(
            "Each customer's last events were held out and tested on (wishlists and purchases), and some "
            "customers entirely: warm customers had history in training, cold ones had none."
        )
    else:
        st.caption(
            f"Trained on everything up to {cutoff:%d %b %Y}, tested on the wishlists and purchases after it. "
            "Warm customers had history before that day, cold ones had none."
        )
    ks = sorted(quality["k"].unique())
    verdicts = st.container()  # the verdict first, written once the metric and k are picked below
    c1, c2 = st.columns([1, 3])
    metrics = sorted(quality["metric"].unique())
    metric = c1.selectbox("Metric", metrics, index=metrics.index("ndcg") if "ndcg" in metrics else 0)
    k = c1.selectbox("At k", ks, index=ks.index(10) if 10 in ks else 0)
    ours = quality[(quality["metric"] == metric) & (quality["k"] == k)]
    chosen = ours.assign(model=ours["model"].map(model_name))
    chart = chosen.pivot_table(index="model", columns="user_group", values="value", sort=False)
    groups = [group for group in ("warm", "cold") if group in chart.columns] or list(chart.columns)
    c2.bar_chart(
        chart[groups],
        stack=False,
        height=min(560, 30 * len(groups) * len(chart) + 90),
        horizontal=True,
        # horizontal: x_label names the bars (models), y_label the values
        x_label="model",
        y_label=f"{metric}@{k} (higher is better)",
    )
    users = chosen.groupby("user_group")["n_users"].max()
    c1.caption(" · ".join(f"{group}: {int(n):,} customers" for group, n in users.items()))

    # one sentence per group: the hybrid against the best baseline present, intervals and counts
    for group in ("warm", "cold"):
        rows = ours[(ours["user_group"] == group) & ours["value"].notna()]
        hybrid = rows[rows["model"] == "hybrid"]
        baselines = rows[rows["model"].isin(BASELINE_MODELS)].sort_values("value", ascending=False)
        if hybrid.empty or baselines.empty:
            continue
        mine, best = hybrid.iloc[0], baselines.iloc[0]
        verdicts.markdown(
            f"**{group.capitalize()} customers** ({int(mine['n_users']):,}): the hybrid's {metric}@{k} is "
            f"{with_interval(mine)}, {compared(mine, best)} the best baseline, {md(model_name(best['model']))}, "
            f"at {with_interval(best)} on {int(best['n_users']):,} customers."
        )

    trend = query(
        "select run_number, finished_at, user_group, value from evaluation_history"
        " where model = 'hybrid' and metric = ? and k = ? and user_group in ('warm', 'cold')"
        " order by run_number",
        metric,
        int(k),
    )
    runs = trend["run_number"].nunique()
    if runs >= 2:
        st.markdown(f"##### The hybrid's {metric}@{k} over {runs} evaluation runs")
        st.line_chart(
            trend.pivot_table(index="run_number", columns="user_group", values="value"),
            x_label="evaluation run (1 = oldest)",
            y_label=f"{metric}@{k}",
        )
    else:
        st.caption(
            "One evaluation run so far: the trend shows from the second `python -m scripts.evaluate` on."
        )


# -- tab: today's messages, across customers (the daily job: python -m scripts.notify) ---------
def messages_tab(shop: Shop, user_id: int | None) -> None:
    """What the daily job would do today for every customer, the outbox and the picked customer's."""
    st.subheader(f"Today's messages as of {shop.reference_date:%d %b %Y}")
    st.caption(
        "What the daily job would do today with every care reminder and replacement due and not yet in "
        "the outbox: send (one per customer a day), suppressed (no consent), expired (too old), or "
        "deferred (one a day, or the 7-day marketing cap) to another day."
    )
    candidates = query(
        "select user_id, kind, due_on, days_overdue, channel, time_zone, decision, reason, title,"
        " idempotency_key from message_candidates order by decision, user_id, due_on"
    )
    decisions = candidates["decision"].value_counts()
    kpis = st.columns(4)
    for column, decision in zip(kpis, ("send", "suppressed", "expired", "deferred"), strict=True):
        label = "To send" if decision == "send" else decision.capitalize()
        column.metric(label, f"{int(decisions.get(decision, 0)):,}")
    filters = st.columns(2)
    kinds = filters[0].multiselect("Kind", sorted(candidates["kind"].unique()), key="messages_kind")
    chosen = filters[1].multiselect(
        "Decision", sorted(candidates["decision"].unique()), key="messages_decision"
    )
    picked = pd.Series(True, index=candidates.index)
    if kinds:
        picked &= candidates["kind"].isin(kinds)
    if chosen:
        picked &= candidates["decision"].isin(chosen)
    shown = candidates[picked]
    table(shown)
    st.download_button(
        "Download these messages (CSV)",
        shown.to_csv(index=False).encode("utf-8"),
        file_name=f"messages-{shop.reference_date.isoformat()}.csv",
        mime="text/csv",
    )

    st.markdown("#### The outbox")
    outbox = query(
        "select user_id, kind, status, reason, channel, due_on, queued_on, sent_on, attempts, last_error"
        " from outbox"
    )
    if outbox.empty:
        st.info("Nothing recorded yet: run `python -m scripts.notify --sink file:out/messages.jsonl`.")
    else:
        counts = outbox.groupby(["status", "reason"], dropna=False).size().reset_index(name="messages")
        counts["reason"] = counts["reason"].fillna("")
        table(counts)
    rates = query("select * from message_outcome_rates order by kind")
    if not rates.empty:
        st.markdown("#### Did they buy within the outcome window?")
        table(rates)

    if user_id is None:
        return
    st.markdown(f"#### Customer {user_id}: messages sent and suppressed")
    mine = outbox[outbox["user_id"] == user_id]
    waiting = candidates[candidates["user_id"] == user_id]
    if mine.empty and waiting.empty:
        st.caption("No message recorded or due for this customer.")
    if not mine.empty:
        table(mine.drop(columns=["user_id"]))
    if not waiting.empty:
        st.caption("Due today and not yet recorded:")
        table(waiting[["kind", "due_on", "decision", "reason", "title"]])


# -- the page ---------------------------------------------------------------------------------
st.title("👟 Shoe recommender")

try:
    settings = query("select reference_date, due_soon_days, currency from current_settings")
    user_count = int(query("select count(*) as n from user_profiles").at[0, "n"])
except Unavailable as exc:
    show_unavailable(str(exc))
    st.stop()
except Exception:  # noqa: BLE001 - a view missing or broken: say what to do, no traceback
    log.exception("dashboard cannot read the views")
    st.error("The database is not ready for the dashboard (views missing?). Run `python -m scripts.build`.")
    st.stop()

shop = Shop(
    reference_date=pd.Timestamp(settings.at[0, "reference_date"]).date(),
    due_soon_days=int(settings.at[0, "due_soon_days"]),
    currency=str(settings.at[0, "currency"]),
)

# -- sidebar: which customer, as of when -------------------------------------------------------
with st.sidebar:
    st.header("Customer")
    user_id: int | None = None
    if user_count == 0:
        st.info("No customers yet: load users.csv with `python -m scripts.load`.")
    else:

        def pick_random() -> None:
            offset = random.randrange(user_count)
            picked = query("select user_id from user_profiles order by user_id limit 1 offset ?", offset)
            st.session_state["user_id"] = int(picked.at[0, "user_id"])

        if user_count <= MAX_USERS_IN_PICKER:
            user_ids = [
                int(x) for x in query("select user_id from user_profiles order by user_id")["user_id"]
            ]
            if st.session_state.get("user_id") not in user_ids:
                st.session_state["user_id"] = user_ids[0]
            st.selectbox("Customer id (type to search)", user_ids, key="user_id")
        else:
            if "user_id" not in st.session_state:
                st.session_state["user_id"] = int(
                    query("select min(user_id) as id from user_profiles").at[0, "id"]
                )
            st.number_input("Customer id", step=1, key="user_id")
        st.button("🎲 Random customer", on_click=pick_random, width="stretch")
        user_id = int(st.session_state["user_id"])

    st.header("As of")
    as_of: dt.date = st.date_input(
        "Their shoes and care reminders as of",
        value=shop.reference_date,
        format="DD/MM/YYYY",
        help="Moves the customer's shoes and care reminders to this day (purchases up to the reference "
        "date). Messages, suggestions, the overview and today's messages are at the reference date.",
    )
    st.caption(
        f"Reference date {shop.reference_date:%d %b %Y} (messages, suggestions, overview) · {engine_of(DB_URL)}"
    )

tab_customer, tab_new, tab_business, tab_messages = st.tabs(
    ["Customer", "A brand-new customer", "Business overview", "Today's messages"]
)
with tab_customer, section("customer"):
    customer_tab(shop, user_id, as_of)
with tab_new, section("new customer"):
    new_customer_tab(shop)
with tab_business, section("business overview"):
    business_tab(shop)
with tab_messages, section("messages"):
    messages_tab(shop, user_id)
